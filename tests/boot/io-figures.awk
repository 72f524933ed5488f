# The figures of one fio or iperf3 run, out of its JSON report (--output-format=json, -J: both
# print one key per line), as KEY=VALUE words on one line, for tests/boot/l2-io to print on the
# guest's console: a few dozen bytes instead of the report's kilobytes, which a serial console
# under nested emulation can drop (QEMU's 16550 gives up on a byte after a few retries).
#   fio:    read-bytes= read-bw= read-iops= read-clat-ns= write-bytes= write-bw= write-iops=
#           write-clat-ns=  (io_bytes, bw_bytes in bytes/s, iops, clat_ns.mean of each direction)
#   iperf3: bytes= seconds= bps=  (end.sum_received: what the receiving side counted)
#   either: error=TEXT when the report has an "error" key
# Runs under busybox awk (no gensub, no arrays of arrays).

function value(line) {
  sub(/^[^:]*:[ \t]*/, "", line)
  sub(/,?[ \t]*$/, "", line)
  gsub(/"/, "", line)
  gsub(/[ \t]+/, "_", line)
  return line
}

function keep(key, line) {
  if (!(key in out)) {
    out[key] = value(line)
    order[++n] = key
  }
}

# fio: the sections of a job's figures.
match($0, /"(read|write|trim|sync)"[ \t]*:[ \t]*\{/) {
  section = substr($0, RSTART + 1)
  sub(/".*/, "", section)
  clat = 0
  next
}
section == "read" || section == "write" {
  if ($0 ~ /"io_bytes"[ \t]*:/) keep(section "-bytes", $0)
  else if ($0 ~ /"bw_bytes"[ \t]*:/) keep(section "-bw", $0)
  else if ($0 ~ /"iops"[ \t]*:/) keep(section "-iops", $0)
  else if ($0 ~ /"clat_ns"[ \t]*:/) clat = 1
  else if (clat && $0 ~ /"mean"[ \t]*:/) {
    keep(section "-clat-ns", $0)
    clat = 0
  }
}

# iperf3: the receiver's sum at the end.
/"sum_received"[ \t]*:/ { received = 1; next }
received && /"bytes"[ \t]*:/ { keep("bytes", $0) }
received && /"seconds"[ \t]*:/ { keep("seconds", $0) }
received && /"bits_per_second"[ \t]*:/ { keep("bps", $0); received = 0 }

/"error"[ \t]*:[ \t]*"/ { keep("error", $0) }

END {
  line = ""
  for (i = 1; i <= n; i++) line = line (i > 1 ? " " : "") order[i] "=" out[order[i]]
  print line
}
