"""The controller's standing-sequence instructions (``ldseq``, ``chan``, ``feed``) against its model.

The controller alone on Amaranth's simulator in lockstep with
:class:`~rramcim.model.chip_cycle.ControllerModel` (``run_controller`` of
tests/rtl/test_controller.py: every flit and its cycle, running/done every cycle, then the
error register, the global buffer and every counter), the tiles played by
:class:`~tests.rtl.feed_blocks.FeedMesh`: ``ACK`` s for ``ldseq``, ``CREDIT`` s from each
channel's tile after delays drawn ahead, ``RESULT_S`` packets meeting every ``feed``'s
``expect``, some of them to the words a feed packet is sending. The network's backpressure and
the idle cycles of what is delivered are patterns drawn ahead from the seed, the same for both.
"""

import pytest

from rramcim.model.chip_cycle import ControllerModel
from rramcim.model.encoding import PacketType
from rramcim.model.isa import assemble
from tests.configs import CHIP_CONFIGS, DEFAULT, TINY
from tests.rtl.chip_blocks import BlockMismatch
from tests.rtl.feed_blocks import SortedRx, feed_facts, feed_program, mesh_with
from tests.rtl.test_controller import run_controller

A16 = CHIP_CONFIGS["a16x4"]


def run_feed(cfg, seed, program=None, mesh=None, **kw):
    """``run_controller`` with the feed stand-in; the result gains ``facts`` (:func:`feed_facts`)."""
    rx = []

    def make_rx(cfg, idle):
        rx.append(SortedRx(cfg, idle))
        return rx[0]
    program = program if program is not None else feed_program(cfg, seed)
    res = run_controller(cfg, seed, p_err=0.0, program=program, mesh_cls=mesh or mesh_with(), rx_cls=make_rx,
                         **kw)
    res["facts"] = feed_facts(cfg, res["mesh"], rx[0], res["sent"])
    return res


def asm(text, gbuf=None):
    return assemble(text), gbuf or {}


@pytest.mark.parametrize("cfg,seed", [(TINY, 1), (TINY, 2), (TINY, 3), (DEFAULT, 4), (A16, 5),
                                      (CHIP_CONFIGS["odd3x1"], 6)],
                         ids=["tiny-1", "tiny-2", "tiny-3", "default-4", "a16x4-5", "odd3x1-6"])
def test_feed_programs_against_model(cfg, seed):
    res = run_feed(cfg, seed)
    c, f = res["counters"], res["facts"]
    assert res["error"]["code"] == 0
    assert f["packets"] > 0 and c["feed_stall"] > 0 and c["barrier_wait"] > 0 and c["ctrl_tx_stall"] > 0
    assert c["gbuf_read_bits"] > 0 and c["gbuf_write_bits"] > 0
    kinds = {v[1] for _, k, v in res["sent"] if k == "header"}
    assert {PacketType.XS, PacketType.SEQ, PacketType.CMD} <= kinds


def test_feed_random_programs_reach_the_corners():
    """Over a few seeds: results written to words a packet is sending, credits arriving in the cycle a
    packet starts, after a stall, and in a cycle with nothing of theirs to do."""
    total = dict(hits=0, credit_at_start=0, credit_at_stall=0)
    for seed in (11, 12):
        f = run_feed(TINY, seed, mesh=mesh_with(credit_delay=(0, 6), p_chase=0.8),
                     program=feed_program(TINY, seed, segments=4, max_count=8, max_credits=2))["facts"]
        for k in total:
            total[k] += f[k]
    assert all(v > 0 for v in total.values()), total


def test_feed_without_channels():
    """No ``chan``: the ``feed`` sends nothing and goes on; its ``expect`` still holds the barrier."""
    res = run_feed(TINY, 1, asm("feed count=3 expect=2\nbarrier\nhalt\n"))
    assert res["error"]["code"] == 0 and res["facts"]["packets"] == 0 and res["mesh"].results == 2
    assert res["counters"]["instructions"] == 3 and res["counters"]["barrier_wait"] > 0
    assert res["counters"]["feed_stall"] == 0


@pytest.mark.parametrize("text,code,pc", [
    ("chan 0,0 c=0 words=1 credits=1 gaddr=0\nchan 0,0 c=2 words=1 credits=1 gaddr=9\nfeed count=1 expect=0\nhalt",
     2, 2),
    ("chan 0,0 c=0 words=2 credits=1 gaddr=1016\nchan 1,0 c=1 words=2 credits=1 gaddr=1017\nfeed count=4 expect=0"
     "\nhalt", 3, 2),
    ("chan 1,1 c=4 words=1 credits=1 gaddr=0\nhalt", 4, 0),
    ("chan 1,1 c=15 words=1 credits=1 gaddr=0\nhalt", 4, 0),
    ("nop\nchan 1,1 c=0 words=0 credits=1 gaddr=0\nhalt", 4, 1),
    ("chan 1,1 c=0 words=3 credits=1 gaddr=0\nhalt", 4, 0),
    ("chan 1,1 c=0 words=1 credits=0 gaddr=0\nhalt", 4, 0),
    ("chan 1,1 c=0 words=1 credits=9 gaddr=0\nhalt", 4, 0),
    ("chan 2,0 c=0 words=1 credits=1 gaddr=0\nhalt", 2, 0),
    ("feed count=0 expect=0\nhalt", 4, 0),
    ("ldseq 0,0 gaddr=1020\nhalt", 3, 0),
], ids=["one-tile-twice", "past-gbuf", "c-too-big", "c-15", "words-0", "words-too-many", "credits-0",
        "credits-too-many", "chan-off-mesh", "feed-count-0", "ldseq-past-gbuf"])
def test_feed_errors(text, code, pc):
    """TINY: 4 channels, words_x 2, input rings of 8, 1024 global-buffer words, 5-word descriptors."""
    res = run_feed(TINY, 1, asm(text + "\n"))
    assert (res["error"]["code"], res["error"]["pc"]) == (code, pc)
    assert res["counters"]["instructions"] == pc and res["facts"]["packets"] == 0


@pytest.mark.parametrize("text", ["ldseq 0,0 gaddr=0", "chan 1,1 c=0 words=1 credits=1 gaddr=0", "feed count=1 expect=0"])
def test_no_streams_no_feed_instructions(text):
    """A chip built without the sequence part (``streams`` 0) takes ``ldseq``, ``chan`` and ``feed`` as
    illegal opcodes."""
    cfg = TINY.replace(name="nostreams", streams=0)
    res = run_feed(cfg, 1, asm(f"nop\n{text}\nhalt\n"))
    assert (res["error"]["code"], res["error"]["pc"]) == (1, 1)


def test_feed_exactly_to_the_end_of_the_buffer():
    res = run_feed(TINY, 1, asm("chan 1,0 c=3 words=2 credits=2 gaddr=1016\nfeed count=4 expect=0\nhalt\n"))
    assert res["error"]["code"] == 0 and res["facts"]["packets"] == 4
    assert res["counters"]["gbuf_read_bits"] == 8 * TINY.flit_width


@pytest.mark.parametrize("delay", [0, 1, 5])
def test_feed_waits_for_its_only_credit(delay):
    """One channel of one credit: after each packet the feed stalls until the tile's credit arrives
    (``delay`` cycles after the packet's tail it is released, delivered at once): ``delay + 1``
    stalled cycles a packet but the first, the credit taken in the cycle it arrives."""
    count, words = 4, 2
    res = run_feed(TINY, 3, asm(f"chan 1,1 c=1 words={words} credits=1 gaddr=40\nfeed count={count} expect=0\n"
                                "halt\n"), mesh=mesh_with(credit_delay=(delay, delay), p_extra=0.0),
                   p_idle=0.0, p_ready=1.0)
    c = res["counters"]
    assert c["feed_stall"] == (count - 1) * (delay + 1)
    assert c["gbuf_read_bits"] == count * words * TINY.flit_width
    assert res["facts"]["credit_at_stall"] == count - 1
    assert c["cycles"] == 2 + count * (words + 1) + (count - 1) * (delay + 1) + 1


def test_feed_credit_in_the_cycle_a_packet_starts():
    """Two credits and each returned ``words`` cycles after its packet's tail: it arrives in the
    cycle the next packet's last flit goes, with no credit left, and the packet after starts then."""
    count, words = 6, 2
    res = run_feed(TINY, 4, asm(f"chan 0,1 c=0 words={words} credits=2 gaddr=7\nfeed count={count} expect=0\n"
                                "halt\n"), mesh=mesh_with(credit_delay=(words, words), p_extra=0.0),
                   p_idle=0.0, p_ready=1.0)
    assert res["facts"]["credit_at_start"] == count - 2
    assert res["counters"]["feed_stall"] == 0


def test_feed_results_into_the_words_it_sends():
    """Every result chases a packet, to its words, while the network takes a flit one cycle in four."""
    text = ("chan 0,0 c=0 words=2 credits=4 gaddr=100\nchan 1,1 c=3 words=1 credits=2 gaddr=300\n"
            "feed count=6 expect=12\nbarrier\nhalt\n")
    res = run_feed(TINY, 5, asm(text), mesh=mesh_with(p_chase=1.0, p_far=0.0), p_ready=0.25, p_idle=0.0)
    assert res["facts"]["hits"] > 0 and res["mesh"].results == 12


def test_chan_redefined_and_credits_for_no_channel():
    """A channel defined twice (the second counts), a feed of channels 3, 0 (sent in order 0, 3), then a
    feed after them with fresh channels: the channels were forgotten."""
    text = ("chan 0,0 c=3 words=1 credits=1 gaddr=5\nchan 1,0 c=3 words=2 credits=3 gaddr=50\n"
            "chan 0,1 c=0 words=2 credits=2 gaddr=80\nfeed count=5 expect=3\nbarrier\n"
            "chan 1,1 c=1 words=1 credits=1 gaddr=500\nfeed count=2 expect=0\nhalt\n")
    res = run_feed(TINY, 6, asm(text), mesh=mesh_with(p_extra=1.0))
    order = [v[0] for _, k, v in res["sent"] if k == "header"]
    assert order == [(0, 1), (1, 0)] * 5 + [(1, 1)] * 2


def test_credit_in_the_cycle_its_chan_is_fetched():
    """A credit left over from a feed (the tile returned one for its last vector too) arrives in the
    cycle a ``chan`` to the same tile is fetched: it counts toward the new channel, whose second packet
    then goes without waiting."""
    text = ("chan 1,0 c=0 words=1 credits=1 gaddr=3\nfeed count=1 expect=0\n"
            "chan 1,0 c=2 words=1 credits=1 gaddr=9\nfeed count=2 expect=0\nhalt\n")
    res = run_feed(TINY, 7, asm(text), mesh=mesh_with(credit_delay=(0, 0), p_extra=1.0), p_idle=0.0, p_ready=1.0)
    assert res["facts"]["credit_at_chan"] == 1
    assert res["counters"]["feed_stall"] == 0


class _LateCredits(ControllerModel):
    """A model bug: a credit counts one cycle after it arrives."""

    late = ()

    def cycle(self, t, tx_taken, rx_flits=(), flits=0, hops=0):
        late, self.late = self.late, []
        stop = super().cycle(t, tx_taken, rx_flits, flits, hops)
        for ch in self.chans.values():
            ch["credits"] += late.count(ch["tile"])
        return stop

    def _receive(self, flit):
        super()._receive(flit)
        if flit.head and self.rx["type"] == PacketType.CREDIT:
            for ch in self.chans.values():
                if ch["tile"] == self.rx["src"]:
                    ch["credits"] -= 1
                    self.late.append(self.rx["src"])


def test_checker_catches_late_credits():
    with pytest.raises(BlockMismatch, match="cycle"):
        run_feed(TINY, 1, model_cls=_LateCredits)
