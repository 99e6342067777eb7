import asyncio
import os
import time

from bench.cpu import CpuMeter, PeakMemory, server_pids, with_servers


def _spin(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_a_role_is_charged_the_cpu_its_processes_spent_between_start_and_stop() -> None:
    meter = CpuMeter({"core": lambda: [os.getpid()]})
    meter.start()
    _spin(0.2)
    meter.stop()
    # the kernel counts CPU time in ticks of 10 ms
    assert meter.spent["core"] >= 0.2 - 0.02
    assert meter.ms_per_message(100)["core"] >= 1.8


def test_a_process_that_is_gone_is_left_out_rather_than_failing_the_run() -> None:
    meter = CpuMeter({"core": lambda: [os.getpid(), 2**22 + 7]})
    meter.start()
    meter.stop()
    assert set(meter.spent) == {"core"}


def test_the_database_and_redis_servers_are_roles_of_their_own() -> None:
    roles = with_servers({"core": lambda: [os.getpid()]})
    assert set(roles) == {"core", "postgres", "redis"}
    assert server_pids(("no-such-process-name",)) == []


async def test_a_roles_peak_memory_is_the_most_its_processes_held_at_once() -> None:
    peak = PeakMemory({"core": lambda: [os.getpid()], "gone": lambda: [2**22 + 7]})
    peak.sample()
    before = peak.megabytes()["core"]
    stop = asyncio.Event()
    sampling = asyncio.create_task(peak.run(stop, every_s=0.01))
    held = b"\x01" * (64 * 1024 * 1024)  # written, so resident
    await asyncio.sleep(0.1)
    stop.set()
    await sampling
    del held

    assert peak.megabytes()["core"] - before >= 60
    assert peak.megabytes()["gone"] == 0


def test_memory_growth_compares_the_last_fifth_with_the_second_leaving_out_the_warm_up() -> None:
    memory = PeakMemory({"core": list})
    mb = 1024 * 1024
    memory.samples = [{"core": n * mb} for n in (500, 100, 100, 100, 100, 120, 120, 130, 130, 130)]

    assert memory.growth_megabytes() == {"core": 30.0}


def test_too_short_a_run_tells_no_growth() -> None:
    memory = PeakMemory({"core": list})
    memory.samples = [{"core": 1}] * 9

    assert memory.growth_megabytes() is None
