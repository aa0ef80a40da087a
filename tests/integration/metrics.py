"""metrics.py FILE|- NAME[{LABEL=VALUE}]...: parses Prometheus text exposition
(remapfs's metrics) with the Python client's parser, which raises on any
malformed line, and prints the value of each sample asked for, one per line
("missing" when there is none). A sample is named as the file names it
(counters with their _total), with at most one label besides uuid."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read() if sys.argv[1] == "-" else open(sys.argv[1]).read()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if "uuid" not in s.labels:
                sys.exit(f"{s.name}: no uuid label")
            rest = {k: v for k, v in s.labels.items() if k != "uuid"}
            key = s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(rest.items()))
            samples[key] = s.value
    for want in sys.argv[2:]:
        v = samples.get(want)
        print("missing" if v is None else (int(v) if v == int(v) else v))


main()
