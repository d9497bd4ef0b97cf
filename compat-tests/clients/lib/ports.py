"""Ports for the brokers the tests start, chosen outside the kernel's ephemeral port range.

A port from bind(port 0) comes from that range, the same one every outgoing connection takes
its local port from. Between choosing a port and the broker binding it (or, when a broker is
SIGKILLed and started again on its ports, for the whole time it is down), any client
connecting anywhere may take it, and the broker then fails with "Address already in use". With
the librdkafka suite running beside the client scenarios that happened. A port below the range
is never handed to an outgoing connection, so only another listener can hold it, and that is
checked by binding it.

    python3 ports.py     # prints one free port (for the shell scripts)
"""
import random
import socket


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def free_port():
    low, high = ephemeral_range()
    # Below the range if there is room there, else above it.
    lo, hi = (20000, low - 1) if low - 20000 >= 2000 else (high + 1, 65535)
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(lo, hi)
        if _bindable(port):
            return port
    with socket.socket() as s:  # everything tried was taken: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
