"""What the Python sides of the benchmarks share."""


def rss_mib() -> float:
    """This process's resident set now, in MiB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
