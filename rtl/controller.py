"""The controller: instruction memory, global buffer, fetch and check, DMA over the network.

Behaviour and timing are those of :class:`rramcim.model.chip_cycle.ControllerModel`
(in :class:`~rramcim.model.chip_cycle.ChipCycleModel`; docs/isa.md): one state per cycle,

* ``FETCH`` reads ``imem[pc]`` and checks it (:func:`rramcim.model.chip.check_instr`,
  in the same order: pending RRAM error, instruction-memory overflow, illegal
  opcode, tile, global-buffer range, tile addresses); a good instruction
  issues: ``nop`` fetches again, ``halt`` stops, ``barrier`` waits, the others
  send packets;
* ``SEND`` offers one flit per cycle to the network (a :class:`~.sender.PacketSender`):
  a load sends ``count`` packets (argument word, then the vector's words read from
  the global buffer, one cycle ahead of the cycle each is offered, a word written
  meanwhile patched in), a tile command one ``CMD`` packet holding the instruction;
* ``WAIT`` (``barrier``) fetches the next instruction once no answer is
  outstanding (as registered at the start of the cycle).

The receive side is always ready: ``ACK`` lowers the outstanding count,
``RESULT`` words go to the global buffer, ``ERR`` sets the pending error.

The host side (plain streams and registers; the AXI interface wraps them):
``imem_wr`` and ``gbuf_wr`` write words while the chip is not running,
``gbuf_rd_addr``/``gbuf_rd_data`` read a word (one cycle later), ``start``
runs the program from address 0, ``done``/``running`` and the error register
tell how it ended. The performance counters' pre-counters are on ``counters``
(:mod:`.counters`).
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.chip import BANK_FIELDS, REQUANT_FIELDS, REQUANT_OPS, STREAM_OPS, tile_limits
from ..model.config import Config
from ..model.encoding import (COUNTER_NAMES, ERR_ARG, ERROR_CODE_BITS, ERROR_FIELDS, GADDR_BITS,
                              HEADER_TYPE_BITS, LOAD_COUNT, LOAD_PACKET, RESULT_ARG, WROW_ARG, ErrorCode, PacketType,
                              gbuf_words_of, gbuf_write_fields, imem_write_fields)
from ..model.isa import COUNT_MAX, FORMATS, INSTR_BITS, OPCODE_BITS, Op

FEED_MAX = (1 << 16) - 1          # a feed's count and expect (16-bit fields)
from .counters import CounterPort, counter_indices, pre_counters
from .noc.ni import NodeSignature
from .fields import instr_field, layout, pack
from .sender import PacketSender

__all__ = ["Controller", "CtrlState", "error_layout"]



def error_layout() -> data.StructLayout:
    """The error register: code (docs/isa.md), instruction address, and for RRAM errors tile and row."""
    return layout(ERROR_FIELDS)


class CtrlState(enum.Enum, shape=3):
    IDLE = 0
    FETCH = 1
    SEND = 2
    WAIT = 3
    FEED = 4


def _has_op(cfg: Config, op: int) -> bool:
    """The chip has instruction ``op`` (``ldseq``, ``chan``, ``feed`` need ``streams``; ``ldrq`` the requant unit)."""
    return not (not cfg.streams and op in STREAM_OPS or not cfg.has_requant and op in REQUANT_OPS)


def _used_mask(cfg: Config, name: str) -> int:
    """The bits instruction ``name`` uses on ``cfg`` (a chip of one bank has no ``bank`` or ``reduce``,
    one without the requant unit no ``rq``)."""
    mask = (1 << OPCODE_BITS) - 1
    for f in FORMATS[name][1]:
        if (cfg.banks > 1 or f.name not in BANK_FIELDS) and (cfg.has_requant or f.name not in REQUANT_FIELDS):
            mask |= ((1 << f.width) - 1) << f.lsb
    return mask


class Controller(wiring.Component):
    """Members
    -------
    node : Out(NodeSignature)
        The controller's port of the network.
    imem_wr : In(stream of {addr, data})
        Host writes to the instruction memory (ready while not running). An
        address past the end sets ``ErrorCode.IMEM_OVERFLOW``.
    gbuf_wr : In(stream of {addr, data})
        Host writes to the global buffer (ready while not running and no
        result is being written). An address past the end sets ``ErrorCode.BAD_GBUF``.
    gbuf_rd_addr : In(GADDR_BITS), gbuf_rd_data : Out(flit_width)
        The word at ``gbuf_rd_addr``, one cycle later.
    start : In(1)
        Taken while not running and ``quiet``: clears counters and the error register, runs from address 0.
    quiet : In(1)
        Nothing in flight in the chip (from the core).
    sending : Out(1)
        The controller is sending a packet.
    running, done : Out(1)
        ``done`` rises when the program stops (halt or error) and stays until the next start.
    error : Out(error_layout())
    irq : Out(1)
        The error register holds an error.
    noc_flits, noc_hops : In
        The network's events this cycle (from the mesh).
    clearing : Out(1)
        A start is taken in this cycle: the counters clear (the chip gives ``running`` and
        ``clearing`` to every counter port, this one's too).
    counters : Out(CounterPort(len(COUNTER_NAMES)))
        The pre-counters of ``COUNTER_NAMES``, in order (:mod:`.counters`).
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        nodes = cfg.mesh_x * cfg.mesh_y
        super().__init__({
            "node": Out(NodeSignature(cfg)),
            "imem_wr": In(stream.Signature(layout(imem_write_fields()))),
            "gbuf_wr": In(stream.Signature(layout(gbuf_write_fields(cfg)))),
            "gbuf_rd_addr": In(GADDR_BITS),
            "gbuf_rd_data": Out(cfg.flit_width),
            "start": In(1),
            "running": Out(1),
            "done": Out(1),
            "error": Out(error_layout()),
            "irq": Out(1),
            "noc_flits": In(range(nodes + 2)),
            "noc_hops": In(range(4 * nodes + 1)),
            "clearing": Out(1),
            "counters": Out(CounterPort(len(COUNTER_NAMES))),
            "quiet": In(1),
            "sending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = _CtrlLogic(self, m)
        # in this order: a later part's assignments to the error register win
        c.host_writes()
        c.receive()
        c.send_path()
        c.fetch()
        c.fsm()
        m.d.comb += self.clearing.eq(c.take_start & c.in_idle)
        pre_counters(m, c.incs, period=len(counter_indices(self.cfg)), port=self.counters)
        return m


class _CtrlLogic:
    """The controller's parts and registers while it is elaborated, built into ``m`` part by part."""

    def __init__(self, ctl: Controller, m: Module):
        cfg = self.cfg = ctl.cfg
        self.ctl, self.m, self.node = ctl, m, ctl.node
        m.submodules.imem = imem = Memory(shape=INSTR_BITS, depth=cfg.imem_depth, init=[])
        m.submodules.gbuf = gbuf = Memory(shape=cfg.flit_width, depth=cfg.gbuf_words, init=[])
        m.submodules.sender = self.sender = PacketSender(cfg, raw=True)
        self.imem_r, self.imem_w = imem.read_port(domain="comb"), imem.write_port()
        self.gbuf_w = gbuf.write_port()
        # registered reads (block RAM on an FPGA)
        self.dma_r, host_r = gbuf.read_port(), gbuf.read_port()
        m.d.comb += [host_r.addr.eq(ctl.gbuf_rd_addr), ctl.gbuf_rd_data.eq(host_r.data)]

        self.state = Signal(CtrlState)
        self.running = self.state != CtrlState.IDLE
        self.in_idle = self.state == CtrlState.IDLE
        m.d.comb += ctl.running.eq(self.running)
        self.done = Signal()
        self.err = Signal(error_layout())
        m.d.comb += [ctl.done.eq(self.done), ctl.error.eq(self.err), ctl.irq.eq(self.err.code != 0)]
        self.pc = Signal(range(cfg.imem_depth + 1))
        # answers outstanding: at most every instruction of the program a feed expecting FEED_MAX
        self.outstanding = Signal(range(cfg.imem_depth * (FEED_MAX if cfg.streams else COUNT_MAX) + 1))
        self.pend = Signal(error_layout())       # code != 0: an ERR packet arrived
        self.ack = Signal()                      # an ACK arrives in this cycle
        self.word = Signal(INSTR_BITS)           # the instruction at pc (fetch); a command sends it
        self.gaddr = Signal(GADDR_BITS + 1)      # the global-buffer address of the packet's vector
        self.gstep = Signal(range(max(cfg.words_x, cfg.words_w, cfg.words_a, cfg.seq_words if cfg.streams else 0)
                                      + 1))   # its words
        # feed channels (chan): tile, next vector's address, words a vector, credits; the feed's vector
        # and channel
        self.chans = [Signal(data.StructLayout({"valid": 1, "x": 4, "y": 4, "addr": GADDR_BITS + 1,
                                                "words": 8, "credits": 9}),
                             name=f"chan{c}") for c in range(cfg.feed_channels)]
        self.credit_in = Signal(cfg.feed_channels)   # a CREDIT for channel c arrives in this cycle
        self.credit_hdr = Signal()                   # a CREDIT arrives in this cycle (from rx_header's src)
        self.feed_v = Signal(16)
        self.feed_count = Signal(16)
        self.feed_c = Signal(range(max(1, cfg.feed_channels)))
        self.feed_take = Signal()                        # a feed packet starts (its channel: take_c)
        self.take_c = Signal(range(max(1, cfg.feed_channels)))

        self.incs = {name: [] for name in COUNTER_NAMES}
        self.count("cycles", 1)
        self.count("noc_flits", 1, ctl.noc_flits)
        self.count("noc_flit_hops", 1, ctl.noc_hops)

    def count(self, name, cond, amount=1):
        self.incs[name].append((cond, amount))

    def host_writes(self):
        """The instruction memory's host writes (while not running); one past the end sets the error."""
        m, ctl, imem_w, err = self.m, self.ctl, self.imem_w, self.err
        m.d.comb += [
            ctl.imem_wr.ready.eq(~self.running),
            imem_w.addr.eq(ctl.imem_wr.payload.addr),
            imem_w.data.eq(ctl.imem_wr.payload.data),
        ]
        # A write past the end sets the error register; a burst of them reports its first address.
        past_end = Signal()
        with m.If(ctl.imem_wr.valid & ctl.imem_wr.ready):
            with m.If(ctl.imem_wr.payload.addr < self.cfg.imem_depth):
                m.d.comb += imem_w.en.eq(1)
                m.d.sync += past_end.eq(0)
            with m.Else():
                m.d.sync += past_end.eq(1)
                with m.If(~past_end):
                    m.d.sync += [err.eq(0), err.code.eq(ErrorCode.IMEM_OVERFLOW), err.pc.eq(ctl.imem_wr.payload.addr)]

    def receive(self):
        """The network's packets (always ready), and the global buffer's write port: a ``RESULT``
        word, else the host's write (which waits while a ``RESULT`` packet is received)."""
        m, cfg, ctl, pend, gbuf_w = self.m, self.cfg, self.ctl, self.pend, self.gbuf_w
        node = self.node
        r_type = Signal(HEADER_TYPE_BITS)
        r_first = Signal()              # the next payload word is the argument
        r_addr = Signal(GADDR_BITS + 1)
        r_src = Signal(node.rx_header.payload.src.shape())
        m.d.comb += [node.rx_header.ready.eq(1), node.rx_payload.ready.eq(1)]
        result_arg, err_arg = layout(RESULT_ARG), layout(ERR_ARG)     # the argument words read
        rh, rp = node.rx_header, node.rx_payload
        is_result = (r_type == PacketType.RESULT) | (r_type == PacketType.RESULT_S)
        with m.If(rh.valid):
            m.d.sync += [r_type.eq(rh.payload.type), r_src.eq(rh.payload.src), r_first.eq(1)]
            m.d.comb += self.ack.eq(rh.payload.type == PacketType.ACK)
            with m.If(rh.payload.type == PacketType.CREDIT):
                m.d.comb += self.credit_hdr.eq(1)
                for c, ch in enumerate(self.chans):
                    m.d.comb += self.credit_in[c].eq(ch.valid & (ch.x == rh.payload.src.x)
                                                     & (ch.y == rh.payload.src.y) & ~rh.payload.src.ctrl)
        # a feed's expected result answers when its last word arrives
        with m.If(rp.valid & rp.payload.last & (r_type == PacketType.RESULT_S)):
            m.d.comb += self.ack.eq(1)
        result_write = Signal()
        with m.If(rp.valid):
            m.d.sync += r_first.eq(0)
            word = rp.payload.data
            with m.If(is_result):
                with m.If(r_first):
                    m.d.sync += r_addr.eq(result_arg(word[:result_arg.size]).gaddr)
                with m.Else():
                    m.d.comb += result_write.eq(1)
                    m.d.sync += r_addr.eq(r_addr + 1)
            with m.If((r_type == PacketType.ERR) & r_first & (pend.code == 0)):
                arg = err_arg(word[:err_arg.size])
                m.d.sync += [pend.code.eq(ErrorCode.RRAM_VERIFY), pend.pc.eq(arg.pc), pend.row.eq(arg.row[:cfg.rram_row_bits]),
                             pend.x.eq(r_src.x), pend.y.eq(r_src.y)]
        self.count("gbuf_write_bits", result_write, cfg.flit_width)
        with m.If(result_write):
            m.d.comb += [gbuf_w.addr.eq(r_addr), gbuf_w.data.eq(rp.payload.data),
                         gbuf_w.en.eq(r_addr < cfg.gbuf_words)]
        with m.Else():
            m.d.comb += [gbuf_w.addr.eq(ctl.gbuf_wr.payload.addr), gbuf_w.data.eq(ctl.gbuf_wr.payload.data)]
        # The host's writes wait while a RESULT packet is being received (late results of a run that
        # stopped on an error): a register, so that the host port does not wait on the network.
        in_result = Signal()
        with m.If(rh.valid):
            m.d.sync += in_result.eq((rh.payload.type == PacketType.RESULT) | (rh.payload.type == PacketType.RESULT_S))
        with m.Elif(rp.valid & rp.payload.last):
            m.d.sync += in_result.eq(0)
        m.d.comb += ctl.gbuf_wr.ready.eq(~self.running & ~in_result)
        with m.If(ctl.gbuf_wr.valid & ctl.gbuf_wr.ready):
            with m.If(ctl.gbuf_wr.payload.addr < cfg.gbuf_words):
                m.d.comb += gbuf_w.en.eq(1)
            with m.Else():
                m.d.sync += [self.err.eq(0), self.err.code.eq(ErrorCode.BAD_GBUF)]

    def send_path(self):
        """The node's transmit half: the sender (loads and commands) or, in ``FEED``, the feed's own
        transmitter; their data words: the instruction's (a command), or the global buffer's from
        ``gaddr`` on, read a cycle ahead.

        The feed's transmitter sends one ``XS`` packet at a time (header, then ``length`` words, no
        argument word) and starts the next one in the cycle the last flit of one is taken (a
        :class:`~.sender.PacketSender` takes a job only from the cycle after), so that, as in the
        model, the next header goes in the cycle after.
        """
        m, cfg, sender, gbuf_w, dma_r = self.m, self.cfg, self.sender, self.gbuf_w, self.dma_r
        W, words, node = cfg.flit_width, sender.words, self.node
        self.feeding = feeding = self.state == CtrlState.FEED
        m.d.comb += self.ctl.sending.eq((self.state == CtrlState.SEND) | feeding)
        # the feed's transmitter: a packet under way, its header next, the payload word offered
        self.f_busy, self.f_hdr = Signal(), Signal()
        self.f_k, self.f_len = Signal(8), Signal(8)
        self.f_dest = Signal(node.tx_header.payload.dest.shape())
        f_hv, f_pv = self.f_busy & self.f_hdr, self.f_busy & ~self.f_hdr
        f_header = Signal(node.tx_header.payload.shape())
        m.d.comb += [f_header.dest.eq(self.f_dest), f_header.type.eq(PacketType.XS), f_header.length.eq(self.f_len)]
        sh, sp, nh, np_ = sender.tx_header, sender.tx_payload, node.tx_header, node.tx_payload
        f_taken = (f_hv & nh.ready) | (f_pv & np_.ready)
        self.f_done = f_taken & ~self.f_hdr & (self.f_k + 1 == self.f_len)   # its last flit is taken
        with m.If(f_taken):
            m.d.sync += [self.f_hdr.eq(0), self.f_k.eq(Mux(self.f_hdr, 0, self.f_k + 1))]
        with m.If(self.f_done):
            m.d.sync += self.f_busy.eq(0)                 # unless the next packet starts (feed_step)
        # The data word to send next is read one cycle ahead (a registered read): the first while the
        # argument word is offered (a feed packet's: while its header is taken), each next one in the
        # cycle the one before is taken; a result word written to its address in that cycle or while
        # it waits (``patch``) replaces it. The words sent are those of a read in the cycle each is
        # offered (the model's), and the memory read leaves the network's input path.
        waddr = Signal.like(dma_r.addr)
        patch = Signal(W)
        patched = Signal()
        read_now = Mux(feeding, f_taken, words.ahead)
        m.d.comb += [dma_r.addr.eq(self.gaddr + Mux(feeding, self.f_k + ~self.f_hdr, words.k)), dma_r.en.eq(read_now)]
        with m.If(read_now):
            m.d.sync += [waddr.eq(dma_r.addr), patch.eq(gbuf_w.data),
                         patched.eq(gbuf_w.en & (gbuf_w.addr == dma_r.addr))]
        with m.Elif(gbuf_w.en & (gbuf_w.addr == waddr)):
            m.d.sync += [patch.eq(gbuf_w.data), patched.eq(1)]
        with m.If(words.packet_end):
            m.d.sync += self.gaddr.eq(self.gaddr + self.gstep)
        dma_data = Mux(patched, patch, dma_r.data)
        chunks = [self.word[i * W:(i + 1) * W] for i in range(cfg.cmd_words)]   # it stays while it is sent
        assert len(chunks) <= 2
        cmd_word = chunks[0] if len(chunks) == 1 else Mux(words.k == 0, chunks[0], chunks[1])
        m.d.comb += words.data.eq(Mux(words.raw, cmd_word, dma_data))
        # the node's transmit half: the sender's flits, or the feed's (never both: the sender is idle in FEED)
        m.d.comb += [nh.valid.eq(sh.valid | f_hv), np_.valid.eq(sp.valid | f_pv),
                     nh.payload.eq(Mux(self.f_busy, f_header.as_value(), sh.payload.as_value())),
                     np_.payload.eq(Mux(self.f_busy, dma_data, sp.payload)),
                     sh.ready.eq(nh.ready), sp.ready.eq(np_.ready)]
        self.count("ctrl_tx_stall", sender.stall | (self.f_busy & ~f_taken))
        self.count("gbuf_read_bits", (sp.valid & sp.ready & ~words.raw & (words.k != 0)) | (f_pv & np_.ready), W)

    def fetch(self):
        """The instruction at pc, in a register, and its check.

        The register holds imem[0] while idle, imem[pc + 1] loaded when pc moves on (the host
        writes the instruction memory only while the chip is idle, so the word is the one a read
        of imem[pc] in the fetch cycle gives; the memory read leaves the path through the checks,
        the FPGA clock, docs/fpga.md). Its checks are made as it is loaded (they depend on the
        word only).
        """
        m, cfg, imem_r, imem_w = self.m, self.cfg, self.imem_r, self.imem_w
        self.code = code = Signal(ERROR_CODE_BITS)      # the error of fetching it (0: none)
        # 0 while idle, else pc + 1: a register, no logic before the read. No reset and no initial
        # value in the FPGA flow (fpga/build.py), so that synthesis can merge it into the memory
        # as a block RAM's read address; idle sets it to 0 in a cycle, and a start waits for that.
        self.raddr = raddr = Signal(len(imem_r.addr), name="imem_raddr", reset_less=True)
        m.d.comb += imem_r.addr.eq(raddr)
        loaded = Signal(INSTR_BITS)
        loaded_code = Signal.like(code)
        m.d.comb += loaded.eq(Mux(self.in_idle & imem_w.en & (imem_w.addr == 0), imem_w.data, imem_r.data))
        _check(m, cfg, loaded, loaded_code)
        with m.If(self.in_idle):
            m.d.sync += [self.word.eq(loaded), code.eq(loaded_code)]
        self.next_instr = [self.pc.eq(self.pc + 1), raddr.eq(raddr + 1), self.word.eq(loaded), code.eq(loaded_code)]
        in_fetch = self.state == CtrlState.FETCH
        no_pend = self.pend.code == 0
        self.feed_code = Signal(ERROR_CODE_BITS)         # a feed's check against the channels (0: none)
        _check_feed(m, cfg, self.word, self.chans, self.feed_code)
        self.count("instructions", in_fetch & no_pend & (self.pc < cfg.imem_depth) & (code == 0)
                   & (self.feed_code == 0))
        self.count("barrier_wait", (self.state == CtrlState.WAIT) & no_pend & (self.outstanding != 0))
        self.take_start = self.ctl.start & self.ctl.quiet & (raddr == 0)

    def stop(self, error=None):
        """Statements: the program stops (with ``error`` in the error register)."""
        stmts = [self.state.eq(CtrlState.IDLE), self.done.eq(1), self.raddr.eq(0)]
        if error is not None:
            stmts.append(self.err.eq(error))
        return stmts

    def fsm(self):
        m, cfg, state, pend, err, pc = self.m, self.cfg, self.state, self.pend, self.err, self.pc
        self.inc = inc = Signal(range((FEED_MAX if cfg.streams else COUNT_MAX) + 1))   # answers asked for now
        # an ACK (late in the cycle: the network's ejection) selects between sums made without it
        m.d.sync += self.outstanding.eq(Mux(self.ack, self.outstanding + inc - 1, self.outstanding + inc))
        self.credits()          # first: a chan fetched sets its channel's credits instead
        with m.Switch(state):
            with m.Case(CtrlState.IDLE):
                m.d.sync += self.raddr.eq(0)
                with m.If(self.take_start):
                    m.d.sync += [state.eq(CtrlState.FETCH), pc.eq(0), self.raddr.eq(1), self.done.eq(0), err.eq(0),
                                 pend.eq(0), self.outstanding.eq(0)]
            with m.Case(CtrlState.FETCH):
                with m.If(pend.code != 0):
                    m.d.sync += self.stop(pend)
                with m.Elif(pc >= cfg.imem_depth):
                    m.d.sync += self.stop() + [err.eq(0), err.code.eq(ErrorCode.IMEM_OVERFLOW), err.pc.eq(pc)]
                with m.Elif(self.code != 0):
                    m.d.sync += self.stop() + [err.eq(0), err.code.eq(self.code), err.pc.eq(pc)]
                with m.Elif(self.feed_code != 0):
                    m.d.sync += self.stop() + [err.eq(0), err.code.eq(self.feed_code), err.pc.eq(pc)]
                with m.Else():
                    self.issue()
            with m.Case(CtrlState.SEND):
                with m.If(self.sender.done):
                    m.d.sync += [state.eq(CtrlState.FETCH), *self.next_instr]
            with m.Case(CtrlState.WAIT):
                with m.If(pend.code != 0):
                    m.d.sync += self.stop(pend)
                with m.Elif(self.outstanding == 0):
                    m.d.sync += [state.eq(CtrlState.FETCH), *self.next_instr]
            if cfg.streams:
                with m.Case(CtrlState.FEED):
                    self.feed_step()

    def issue(self):
        """The fetch cycle of a good instruction."""
        m, cfg, word, job = self.m, self.cfg, self.word, self.sender.job
        with m.Switch(word[:OPCODE_BITS]):
            with m.Case(Op.NOP):
                m.d.sync += self.next_instr
            with m.Case(Op.HALT):
                m.d.sync += self.stop()
            with m.Case(Op.BARRIER):
                m.d.sync += self.state.eq(CtrlState.WAIT)
            if cfg.streams:
                with m.Case(Op.CHAN):
                    self.issue_chan()
                with m.Case(Op.FEED):
                    self.issue_feed()
            for name, (op, fields, _) in FORMATS.items():
                if op in (Op.NOP, Op.HALT, Op.BARRIER, Op.CHAN, Op.FEED) or not _has_op(cfg, op):
                    continue
                with m.Case(op):
                    m.d.sync += self.state.eq(CtrlState.SEND)
                    m.d.comb += [job.valid.eq(1), job.payload.dest.x.eq(instr_field(word, name, "tx")),
                                 job.payload.dest.y.eq(instr_field(word, name, "ty")), job.payload.dest.ctrl.eq(0)]
                    if op in LOAD_PACKET:
                        self.issue_load(name, op, {f.name for f in fields})
                        if op == Op.LDSEQ:               # the tile answers when its sequence starts
                            m.d.comb += self.inc.eq(1)
                    else:
                        m.d.comb += [job.payload.raw.eq(1), job.payload.type.eq(PacketType.CMD),
                                     job.payload.length.eq(cfg.cmd_words), job.payload.count.eq(1)]
                        m.d.sync += self.gstep.eq(0)
                        if op == Op.SYNC:
                            m.d.comb += self.inc.eq(1)
                        elif op == Op.PSUM:
                            m.d.comb += self.inc.eq(instr_field(word, name, "count"))

    def issue_chan(self):
        """``chan``: define feed channel ``c`` (the fetch cycle only); a ``CREDIT`` from its tile
        arriving in this cycle counts toward it (the model defines the channel, then receives)."""
        m, word = self.m, self.word
        c = instr_field(word, "chan", "c")
        tx, ty = instr_field(word, "chan", "tx"), instr_field(word, "chan", "ty")
        src = self.node.rx_header.payload.src
        credit = self.credit_hdr & (src.x == tx) & (src.y == ty) & ~src.ctrl
        for k, ch in enumerate(self.chans):
            with m.If(c == k):
                m.d.sync += [ch.valid.eq(1), ch.x.eq(tx), ch.y.eq(ty), ch.addr.eq(instr_field(word, "chan", "gaddr")),
                             ch.words.eq(instr_field(word, "chan", "words")),
                             ch.credits.eq(instr_field(word, "chan", "credits") + credit)]
        m.d.sync += self.next_instr

    def _first_channel(self, after=None):
        """(found, channel): the first defined channel after ``after`` (None: from 0)."""
        found, first = Const(0), Const(0, len(self.feed_c))
        for k in reversed(range(len(self.chans))):
            if after is not None and k == 0:          # none is after channel 0 (no constant compare: lint)
                continue
            ok = self.chans[k].valid if after is None else self.chans[k].valid & (after < k)
            found = found | ok
            first = Mux(ok, k, first)
        return found, first

    def start_feed_packet(self, c):
        """Start channel ``c``'s next vector now if it has a credit (counting one arriving in this
        cycle): its header goes out the next cycle, as the model's; the channel's address moves on to
        the vector after."""
        m = self.m
        ch = Signal.like(self.chans[0])
        with m.Switch(c):
            for k, chk in enumerate(self.chans):
                with m.Case(k):
                    m.d.comb += ch.eq(chk)
        with m.If((ch.credits != 0) | self.credit_in.bit_select(c, 1)):
            m.d.comb += [self.feed_take.eq(1), self.take_c.eq(c)]
            m.d.sync += [self.f_busy.eq(1), self.f_hdr.eq(1), self.f_k.eq(0), self.f_len.eq(ch.words),
                         self.f_dest.x.eq(ch.x), self.f_dest.y.eq(ch.y), self.f_dest.ctrl.eq(0),
                         self.gaddr.eq(ch.addr)]
            with m.Switch(c):
                for k, chk in enumerate(self.chans):
                    with m.Case(k):
                        m.d.sync += chk.addr.eq(ch.addr + ch.words)

    def issue_feed(self):
        """``feed``: its channels in order of their number, vector by vector (none: the next instruction)."""
        m, word = self.m, self.word
        m.d.comb += self.inc.eq(instr_field(word, "feed", "expect"))
        found, first = self._first_channel()
        with m.If(found):
            m.d.sync += [self.state.eq(CtrlState.FEED), self.feed_v.eq(0), self.feed_c.eq(first),
                         self.feed_count.eq(instr_field(word, "feed", "count"))]
            self.start_feed_packet(first)
        with m.Else():
            m.d.sync += self.next_instr

    def feed_step(self):
        """``FEED``: after a packet's last flit, the next channel (and vector); a free sender starts a
        packet when its channel has a credit."""
        m = self.m
        found, nxt = self._first_channel(after=self.feed_c)
        _, first = self._first_channel()
        with m.If(self.f_done):
            with m.If(found):
                m.d.sync += self.feed_c.eq(nxt)
                self.start_feed_packet(nxt)
            with m.Elif(self.feed_v + 1 == self.feed_count):
                m.d.sync += [self.state.eq(CtrlState.FETCH), *self.next_instr]
                m.d.sync += [ch.valid.eq(0) for ch in self.chans]
            with m.Else():
                m.d.sync += [self.feed_c.eq(first), self.feed_v.eq(self.feed_v + 1)]
                self.start_feed_packet(first)
        with m.Elif(~self.f_busy):
            self.start_feed_packet(self.feed_c)
        self.count("feed_stall", self.feeding & ~self.f_busy)    # no flit offered: no credit

    def credits(self):
        """Channel credits: one taken by each packet started, one added by each CREDIT arriving."""
        m = self.m
        for k, ch in enumerate(self.chans):
            take = self.feed_take & (self.take_c == k)
            m.d.sync += ch.credits.eq(ch.credits + self.credit_in[k] - take)

    def issue_load(self, name, op, names):
        """A load: ``count`` packets of a vector from the global buffer each."""
        m, word, job = self.m, self.word, self.sender.job
        words = gbuf_words_of(self.cfg, op)     # a constant per opcode
        if op == Op.LDW:
            row = instr_field(word, name, "row")
            if self.cfg.banks > 1:      # the RRAM row across the banks: bank * rows + row (a constant multiplier)
                row = row + instr_field(word, name, "bank") * self.cfg.rows
            arg = pack(WROW_ARG, row=row, pc=self.pc)
        elif op in (Op.LDBIAS, Op.LDSEQ, Op.LDRQ):
            arg = 0                             # ldrq: halves 0 and 1 (step)
        else:
            arg = instr_field(word, name, "slot")
        count = LOAD_COUNT.get(op, instr_field(word, name, "count") if "count" in names else 1)
        m.d.comb += [job.payload.type.eq(LOAD_PACKET[op]), job.payload.length.eq(1 + words),
                     job.payload.count.eq(count),
                     job.payload.arg.eq(arg), job.payload.step.eq(op not in (Op.LDBIAS, Op.LDSEQ))]
        m.d.sync += [self.gaddr.eq(instr_field(word, name, "gaddr")), self.gstep.eq(words)]


def _check_feed(m, cfg, word, chans, code):
    """``code`` = the error of a ``feed`` in ``word`` against the channels defined (0 if none or not a
    feed), as :meth:`~rramcim.model.chip_cycle.ControllerModel._feed_error` decides."""
    count = instr_field(word, "feed", "count")
    dup = Const(0)
    past = Const(0)
    for i, a in enumerate(chans):
        past = past | (a.valid & (a.addr + count * a.words > cfg.gbuf_words))
        for b in chans[i + 1:]:
            dup = dup | (a.valid & b.valid & (a.x == b.x) & (a.y == b.y))
    is_feed = word[:OPCODE_BITS] == Op.FEED
    m.d.comb += code.eq(Mux(is_feed & dup, ErrorCode.BAD_TILE, Mux(is_feed & past, ErrorCode.BAD_GBUF, 0)))


def _check(m, cfg, word, code):
    """``code`` = the error of fetching ``word`` (0 if none), as :func:`check_instr` decides."""
    m.d.comb += code.eq(ErrorCode.ILLEGAL_OPCODE)
    with m.Switch(word[:OPCODE_BITS]):
        for name, (op, fields, _) in FORMATS.items():
            if not _has_op(cfg, op):
                continue
            with m.Case(op):
                # the first failing check wins: assign in reverse order
                m.d.comb += code.eq(0)
                for c, cond in reversed(_checks(cfg, word, name, op, {f.name for f in fields})):
                    with m.If(cond):
                        m.d.comb += code.eq(c)


def _checks(cfg, word, name, op, names) -> list:
    """(error code, condition) of instruction ``name`` in ``word``, in check order."""
    def fld(n):
        return instr_field(word, name, n)
    conds = [(ErrorCode.ILLEGAL_OPCODE, (word & ~Const(_used_mask(cfg, name), INSTR_BITS)) != 0)]
    if "tx" in names:
        conds.append((ErrorCode.BAD_TILE, (fld("tx") >= cfg.mesh_x) | (fld("ty") >= cfg.mesh_y)))
    if "dx" in names:
        conds.append((ErrorCode.BAD_TILE, (fld("dx") >= cfg.mesh_x) | (fld("dy") >= cfg.mesh_y)
                      | ((fld("dx") == fld("tx")) & (fld("dy") == fld("ty")))))
    n = LOAD_COUNT.get(op, fld("count") if "count" in names else 1)
    words = gbuf_words_of(cfg, op)
    if words:
        conds.append((ErrorCode.BAD_GBUF, fld("gaddr") + n * words > cfg.gbuf_words))
    if "count" in names:
        conds.append((ErrorCode.BAD_TILE_ADDR, fld("count") == 0))
    for fname, lim, ext in tile_limits(cfg).get(name, []):
        if ext in ("reduce", "plain"):        # model/chip.py extent(), as a Mux on the reduce flag
            size = Mux(fld("reduce"), n, 1) if ext == "reduce" else Mux(fld("reduce"), 1, n)
        else:
            size = n if ext == "count" else 1
        conds.append((ErrorCode.BAD_TILE_ADDR, fld(fname) + size > lim))
    if op == Op.CHAN:
        conds.append((ErrorCode.BAD_TILE_ADDR, (fld("c") >= cfg.feed_channels) | (fld("words") == 0)
                      | (fld("words") > cfg.words_x) | (fld("credits") == 0) | (fld("credits") > cfg.tile_ibuf_depth)))
    return conds
