import logging

from genomatt.progress import ProgressLog, format_duration


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_logs_rate_and_time_left_at_most_once_per_interval(caplog):
    clock = FakeClock()
    progress = ProgressLog(1000, "attribute", "regions", logging.getLogger("genomatt.test"), interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="genomatt.test"):
        for step in range(1, 101):  # 10 regions a second
            clock.now = step
            progress.advance_to(10 * step)
        assert len(caplog.records) == 4
        assert caplog.records[0].getMessage() == "attribute: 300/1000 regions (30%), 10 regions/s, 0:30 elapsed, 1:10 left"
        assert caplog.records[-1].getMessage().startswith("attribute: 1000/1000 regions (100%)")
        progress.advance_to(1000)
        assert len(caplog.records) == 4


def test_format_duration():
    assert format_duration(59.6) == "1:00" and format_duration(3725) == "1:02:05" and format_duration(-3) == "0:00"
