"""bench/ref/summarize_logs.py: per-epoch table from nnU-Net training logs (the reference's
training_log_*.txt and nnunet's have the same lines): train_loss, val_loss, pseudo-Dice per
class, and the final "Mean Validation Dice".  python3 summarize_logs.py NAME=LOG ..."""
import re
import sys

for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    rows, cur, final = [], {}, None
    for line in open(path, errors="replace"):
        m = re.search(r"Epoch (\d+)\s*$", line)
        if m:
            cur = {"epoch": int(m.group(1))}
            rows.append(cur)
        for key in ("train_loss", "val_loss"):
            m = re.search(key + r" (\S+)", line)
            if m:
                cur[key] = float(m.group(1))
        m = re.search(r"Pseudo dice \[(.*)\]", line)
        if m:
            cur["dice"] = [float(x) for x in re.findall(r"([-0-9.eE]+|nan)\)", m.group(1))]
        m = re.search(r"Mean Validation Dice:\s+(\S+)", line)
        if m:
            final = float(m.group(1))
    cells = ["e%d %+.3f/%+.3f [%s]" % (r["epoch"], r.get("train_loss", float("nan")), r.get("val_loss", float("nan")),
                                       ", ".join("%.2f" % d for d in r.get("dice", []))) for r in rows]
    print("%-10s %s | final %s" % (name, "  ".join(cells), "%.3f" % final if final is not None else "-"))
