"""Output: the neutral values the runtime decodes, and bpftrace 0.17's text
and JSON renderings of them (maps at exit and for print(), print() values,
messages).  See values.py for the model, order.py for entry order, text.py
and json.py for the two formats."""

from pytrace.output.values import (
    Avg,
    Buffer,
    Count,
    Hist,
    LHist,
    MapData,
    Max,
    Min,
    Record,
    Stack,
    Stats,
    Sum,
    Value,
    encode_output,
    hist_index,
    lhist_index,
    make_hist,
    make_lhist,
)

__all__ = [
    "Avg", "Buffer", "Count", "Hist", "LHist", "MapData", "Max", "Min", "Record",
    "Stack", "Stats", "Sum", "Value", "encode_output", "hist_index", "lhist_index",
    "make_hist", "make_lhist",
]
