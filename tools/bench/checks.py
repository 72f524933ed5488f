"""That each ember run went the way its row says, from ember's run record (harness/record.py):
the guest ended it through the debug-exit port with the value of a passed run, and the disk (and
the rng, for the interrupt round trip) ran on the face the row names, with the ioeventfd setting
it names, every kick arriving that way and none the other. A run that fails this gives no
figures."""
from __future__ import annotations

from harness.record import Device, Record

from .config import on


def _kicks(d: Device, face: str, ioeventfd: bool) -> list[str]:
    problems = []
    if d.face != face:
        problems.append(f"{d.id} ({d.name}) ran on the {d.face or 'no (never activated)'} face, "
                        f"not {face}")
    if d.ioeventfd != ioeventfd:
        problems.append(f"{d.id} ({d.name}) had ioeventfd {on(d.ioeventfd)}, not {on(ioeventfd)}")
    right, wrong = ((d.kicks_ioeventfd, d.kicks_userspace) if ioeventfd
                    else (d.kicks_userspace, d.kicks_ioeventfd))
    if right == 0 or wrong != 0:
        problems.append(f"{d.id} ({d.name}) with ioeventfd {on(ioeventfd)} had "
                        f"{d.kicks_ioeventfd} kicks through ioeventfds and {d.kicks_userspace} as "
                        f"userspace exits; all of them should come "
                        f"{'through ioeventfds' if ioeventfd else 'as userspace exits'}")
    return problems


def ember_run(rec: Record, face: str, ioeventfd: bool, benches: tuple[str, ...],
              debug_exit: int = 0) -> list[str]:
    """What is wrong with the run, from its record; [] when it ran as the row claims."""
    problems = []
    e = rec.exit
    if e.reason != "debug-exit" or e.debug_exit_value != debug_exit:
        problems.append(f"ember's run ended with {e.describe()}, not the guest's debug-exit "
                        f"{debug_exit}")
    wanted = []
    if "bench-kick" in benches or "bench-blk" in benches:
        wanted.append(("blk0", ioeventfd))
    if "bench-irq" in benches:
        wanted.append(("rng0", True))  # ember's virtio-rng always has ioeventfd on
    for id_, fd in wanted:
        d = rec.device(id_)
        if d is None:
            problems.append(f"ember's run record has no {id_}")
        else:
            problems += _kicks(d, face, fd)
    return problems


def switched_run(rec: Record, face: str) -> list[str]:
    """The switch row's run (switch.py): a passed guest's debug-exit, the disk on FACE, and its
    kicks both through ioeventfds and as userspace exits."""
    problems = []
    e = rec.exit
    if e.reason != "debug-exit" or e.debug_exit_value != 0:
        problems.append(f"ember's run ended with {e.describe()}, not the guest's debug-exit 0")
    d = rec.device("blk0")
    if d is None:
        return problems + ["ember's run record has no blk0"]
    if d.face != face:
        problems.append(f"blk0 ran on the {d.face or 'no (never activated)'} face, not {face}")
    if d.kicks_ioeventfd == 0 or d.kicks_userspace == 0:
        problems.append(f"blk0 had {d.kicks_ioeventfd} kicks through ioeventfds and "
                        f"{d.kicks_userspace} as userspace exits; the switch should give both")
    return problems
