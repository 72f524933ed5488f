"""The kernel modules `ember exec` loads in its guest, and the files of a modules directory
(/lib/modules/<release>/) that hold them: modules.dep, modules.builtin, modules.order and the .ko
of each module named and of everything it depends on (modules.dep lists the whole closure of
a module on its line, but the closure is followed here anyway so that a partial index fails
loudly). A module the kernel has built in (modules.builtin) needs no file.

Names compare with '-' and '_' as one character, as the kernel's do (pvpanic_pci is
kernel/drivers/misc/pvpanic/pvpanic-pci.ko)."""
from __future__ import annotations

from pathlib import PurePosixPath

# What ember exec's guest needs (vmm/KernelModules): the virtio-pci transport, the console ports,
# FUSE and virtio-fs for the root and the shares, the overlay over a read-only root, and
# pvpanic-pci for the panic status.
EXEC_MODULES = ("virtio_pci", "virtio_console", "fuse", "virtiofs", "overlay", "pvpanic_pci")
# The index files copied beside the modules; modules.order is optional.
INDEXES = ("modules.dep", "modules.builtin")
OPTIONAL_INDEXES = ("modules.order",)


class ModDepError(Exception):
    pass


def name_of(path: str) -> str:
    """The module's name of a path in modules.dep: kernel/fs/fuse/fuse.ko -> fuse."""
    base = PurePosixPath(path).name
    for suffix in (".ko", ".ko.xz", ".ko.gz", ".ko.zst"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return base.replace("-", "_")


def parse_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep as {name: (path, [dependency paths])}."""
    out: dict[str, tuple[str, list[str]]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        path, colon, deps = line.partition(":")
        if not colon or not path.strip():
            raise ModDepError(f"modules.dep line {number} is not 'PATH: DEPS...': {line!r}")
        out[name_of(path.strip())] = (path.strip(), deps.split())
    return out


def builtin_names(text: str) -> set[str]:
    """The modules of modules.builtin (one path per line)."""
    return {name_of(line.strip()) for line in text.splitlines() if line.strip()}


def closure(dep_text: str, builtin_text: str, names: tuple[str, ...] = EXEC_MODULES) -> list[str]:
    """The module files (paths relative to the modules directory) that loading NAMES needs, each
    once, in the order found. A name built in needs nothing; a name neither built in nor in
    modules.dep, or a dependency missing from modules.dep, raises ModDepError."""
    deps = parse_dep(dep_text)
    builtin = builtin_names(builtin_text)
    files: list[str] = []
    seen: set[str] = set()
    todo = [n.replace("-", "_") for n in names]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in deps:
            path, needs = deps[name]
            files.append(path)
            for need in needs:
                if name_of(need) not in deps:
                    raise ModDepError(f"{path} depends on {need}, which modules.dep does not list")
                todo.append(name_of(need))
        elif name not in builtin:
            raise ModDepError(f"the kernel has no module {name}: neither modules.dep nor "
                              "modules.builtin lists it")
    return files
