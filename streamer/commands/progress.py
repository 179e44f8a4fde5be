"""A tqdm progress bar fed by the library's ``on_progress(done, total)`` callback."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    def __init__(self, *, disable: bool = False, desc: str = "") -> None:
        self.disable = disable
        self.desc = desc
        self._bar: Any = None

    def update(self, done: int, total: int | None) -> None:
        if self.disable:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc or None, unit="frame", dynamic_ncols=True,
                             leave=False)
        self._bar.update(done - self._bar.n)

    def reset(self, desc: str) -> None:
        self.close()
        self.desc = desc

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
