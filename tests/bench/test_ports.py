import socket

from bench.ports import free_port


def test_a_port_is_never_handed_out_twice_even_before_anyone_binds_it():
    # a cluster asks for every role's port before the roles bind them (the kernel reused one)
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)


def test_a_handed_out_port_can_be_bound_on_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
