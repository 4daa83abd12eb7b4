"""The controller: instruction memory, global buffer, fetch and check, DMA over the network.

Behaviour and timing are those of :class:`rramcim.model.chip_cycle.ChipCycleModel`
(docs/isa.md): one state per cycle,

* ``FETCH`` reads ``imem[pc]`` and checks it (:func:`rramcim.model.chip.check_instr`,
  in the same order: pending RRAM error, instruction-memory overflow, illegal
  opcode, tile, global-buffer range, tile addresses); a good instruction
  issues: ``nop`` fetches again, ``halt`` stops, ``barrier`` waits, the others
  send packets;
* ``SEND`` offers one flit per cycle to the network: a load sends ``count``
  packets (argument word, then the vector's words read from the global buffer
  in the cycle each is sent), a tile command one ``CMD`` packet holding the
  instruction;
* ``WAIT`` (``barrier``) fetches the next instruction once no answer is
  outstanding (as registered at the start of the cycle).

The receive side is always ready: ``ACK`` lowers the outstanding count,
``RESULT`` words go to the global buffer, ``ERR`` sets the pending error.

The host side (plain streams and registers; the AXI interface wraps them):
``imem_wr`` and ``gbuf_wr`` write words while the chip is not running,
``gbuf_rd_addr``/``gbuf_rd_data`` read a word (one cycle later), ``start``
runs the program from address 0, ``done``/``running`` and the error register
tell how it ended.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.chip import COUNTER_NAMES, LOAD_PACKET, ErrorCode, PacketType
from ..model.config import Config
from ..model.isa import FORMATS, OPCODE_BITS, Op
from .noc.ni import NodeSignature, reads_ahead, walk_packets
from .counters import PRE_BITS, counter_indices, pre_counters
from .tile import field

__all__ = ["Controller", "CtrlState", "error_layout", "ERROR_PC_BITS"]

ERROR_PC_BITS = 17          # an overflow reports pc = imem_depth, up to 65536
GADDR_BITS = 20
IMEM_ADDR_BITS = 17         # one more than the largest imem needs: a write past the end has an address


def error_layout() -> data.StructLayout:
    """The error register: code (docs/isa.md), instruction address, and for RRAM errors tile and row."""
    return data.StructLayout({"code": 3, "pc": ERROR_PC_BITS, "x": 4, "y": 4, "row": 12})


class CtrlState(enum.Enum, shape=2):
    IDLE = 0
    FETCH = 1
    SEND = 2
    WAIT = 3


def _used_mask(name: str) -> int:
    mask = (1 << OPCODE_BITS) - 1
    for f in FORMATS[name][1]:
        mask |= ((1 << f.width) - 1) << f.lsb
    return mask


class Controller(wiring.Component):
    """Members
    -------
    node : Out(NodeSignature)
        The controller's port of the network.
    imem_wr : In(stream of {addr, data})
        Host writes to the instruction memory (ready while not running). An
        address past the end sets error 5 (instruction-memory overflow).
    gbuf_wr : In(stream of {addr, data})
        Host writes to the global buffer (ready while not running and no
        result is being written). An address past the end sets error 3.
    gbuf_rd_addr : In, gbuf_rd_data : Out
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
        A start is taken in this cycle: the counters clear.
    take : In(one bit a counter)
        The counter bank takes this pre-counter in this cycle (:mod:`.counters`).
    pre : Out(array of PRE_BITS)
        The pre-counters of ``COUNTER_NAMES``, in order.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        nodes = cfg.mesh_x * cfg.mesh_y
        super().__init__({
            "node": Out(NodeSignature(cfg)),
            "imem_wr": In(stream.Signature(data.StructLayout({"addr": IMEM_ADDR_BITS, "data": 64}))),
            "gbuf_wr": In(stream.Signature(data.StructLayout({"addr": GADDR_BITS + 1, "data": cfg.flit_width}))),
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
            "take": In(len(COUNTER_NAMES)),
            "pre": Out(data.ArrayLayout(PRE_BITS, len(COUNTER_NAMES))),
            "quiet": In(1),
            "sending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W = cfg.flit_width
        node = self.node

        m.submodules.imem = imem = Memory(shape=64, depth=cfg.imem_depth, init=[])
        m.submodules.gbuf = gbuf = Memory(shape=W, depth=cfg.gbuf_words, init=[])
        imem_r, imem_w = imem.read_port(domain="comb"), imem.write_port()
        gbuf_w = gbuf.write_port()
        # registered reads (block RAM on an FPGA)
        dma_r, host_r = gbuf.read_port(), gbuf.read_port()
        m.d.comb += [host_r.addr.eq(self.gbuf_rd_addr), self.gbuf_rd_data.eq(host_r.data)]

        state = Signal(CtrlState)
        running = state != CtrlState.IDLE
        m.d.comb += self.running.eq(running)
        done = Signal()
        err = Signal(error_layout())
        m.d.comb += [self.done.eq(done), self.error.eq(err), self.irq.eq(err.code != 0)]
        pc = Signal(range(cfg.imem_depth + 1))
        outstanding = Signal(24)
        pend = Signal(error_layout())            # code != 0: an ERR packet arrived

        incs = {name: [] for name in COUNTER_NAMES}

        def count(name, cond, amount=1):
            incs[name].append((cond, amount))

        count("cycles", 1)
        count("noc_flits", 1, self.noc_flits)
        count("noc_flit_hops", 1, self.noc_hops)

        # --- host writes ---------------------------------------------------------------
        m.d.comb += [
            self.imem_wr.ready.eq(~running),
            imem_w.addr.eq(self.imem_wr.payload.addr),
            imem_w.data.eq(self.imem_wr.payload.data),
        ]
        # A write past the end sets the error register; a burst of them reports its first address.
        past_end = Signal()
        with m.If(self.imem_wr.valid & self.imem_wr.ready):
            with m.If(self.imem_wr.payload.addr < cfg.imem_depth):
                m.d.comb += imem_w.en.eq(1)
                m.d.sync += past_end.eq(0)
            with m.Else():
                m.d.sync += past_end.eq(1)
                with m.If(~past_end):
                    m.d.sync += [err.eq(0), err.code.eq(ErrorCode.IMEM_OVERFLOW),
                                 err.pc.eq(self.imem_wr.payload.addr)]

        # --- receive (always ready) ---------------------------------------------------------
        r_type = Signal(4)
        r_first = Signal()              # the next payload word is the argument
        r_addr = Signal(GADDR_BITS + 1)
        r_src = Signal(node.rx_header.payload.src.shape())
        ack = Signal()
        m.d.comb += [node.rx_header.ready.eq(1), node.rx_payload.ready.eq(1)]
        rh, rp = node.rx_header, node.rx_payload
        with m.If(rh.valid):
            m.d.sync += [r_type.eq(rh.payload.type), r_src.eq(rh.payload.src), r_first.eq(1)]
            m.d.comb += ack.eq(rh.payload.type == PacketType.ACK)
        result_write = Signal()
        with m.If(rp.valid):
            m.d.sync += r_first.eq(0)
            word = rp.payload.data
            with m.If(r_type == PacketType.RESULT):
                with m.If(r_first):
                    m.d.sync += r_addr.eq(word[:GADDR_BITS])
                with m.Else():
                    m.d.comb += result_write.eq(1)
                    m.d.sync += r_addr.eq(r_addr + 1)
            with m.If((r_type == PacketType.ERR) & r_first & (pend.code == 0)):
                m.d.sync += [pend.code.eq(ErrorCode.RRAM_VERIFY), pend.pc.eq(word[:16]), pend.row.eq(word[16:28]),
                             pend.x.eq(r_src.x), pend.y.eq(r_src.y)]
        count("gbuf_write_bits", result_write, W)
        with m.If(result_write):
            m.d.comb += [gbuf_w.addr.eq(r_addr), gbuf_w.data.eq(rp.payload.data),
                         gbuf_w.en.eq(r_addr < cfg.gbuf_words)]
        with m.Else():
            m.d.comb += [gbuf_w.addr.eq(self.gbuf_wr.payload.addr), gbuf_w.data.eq(self.gbuf_wr.payload.data)]
        # The host's writes wait while a RESULT packet is being received (late results of a run that
        # stopped on an error): a register, so that the host port does not wait on the network.
        in_result = Signal()
        with m.If(rh.valid):
            m.d.sync += in_result.eq(rh.payload.type == PacketType.RESULT)
        with m.Elif(rp.valid & rp.payload.last):
            m.d.sync += in_result.eq(0)
        m.d.comb += self.gbuf_wr.ready.eq(~running & ~in_result)
        with m.If(self.gbuf_wr.valid & self.gbuf_wr.ready):
            with m.If(self.gbuf_wr.payload.addr < cfg.gbuf_words):
                m.d.comb += gbuf_w.en.eq(1)
            with m.Else():
                m.d.sync += [err.eq(0), err.code.eq(ErrorCode.BAD_GBUF)]

        # --- the sender (DMA and commands) --------------------------------------------------
        word = Signal(64)               # the instruction at pc (below); a command sends it
        d_cmd = Signal()
        d_type = Signal(4)
        d_dest = Signal(node.tx_header.payload.dest.shape())
        d_len = Signal(8)
        d_count = Signal(9)
        d_v = Signal(9)
        d_hdr = Signal()
        d_k = Signal(8)
        d_arg = Signal(32)
        d_step = Signal()
        d_gaddr = Signal(GADDR_BITS + 1)
        d_words = Signal(8)
        in_send = state == CtrlState.SEND
        m.d.comb += self.sending.eq(in_send)
        hdr = node.tx_header.payload
        m.d.comb += [
            hdr.dest.eq(d_dest),
            hdr.type.eq(d_type),
            hdr.length.eq(d_len),
            node.tx_header.valid.eq(in_send & d_hdr),
            node.tx_payload.valid.eq(in_send & ~d_hdr),
        ]
        # The data word to send next is read one cycle ahead (a registered read): the first while the
        # argument word is offered, each next one in the cycle the one before is taken; a result
        # word written to its address in that cycle or while it waits (``patch``) replaces it. The
        # words sent are those of a read in the cycle each is offered (the model's), and the memory
        # read leaves the network's input path.
        d_waddr = Signal.like(dma_r.addr)
        patch = Signal(W)
        patched = Signal()
        ahead = reads_ahead(node.tx_payload.valid, d_k, node.tx_payload.ready)
        m.d.comb += [dma_r.addr.eq(d_gaddr + d_k), dma_r.en.eq(ahead)]
        with m.If(ahead):
            m.d.sync += [d_waddr.eq(dma_r.addr), patch.eq(gbuf_w.data),
                         patched.eq(gbuf_w.en & (gbuf_w.addr == dma_r.addr))]
        with m.Elif(gbuf_w.en & (gbuf_w.addr == d_waddr)):
            m.d.sync += [patch.eq(gbuf_w.data), patched.eq(1)]
        d_word = Mux(patched, patch, dma_r.data)
        chunks = [word[i * W:(i + 1) * W] for i in range(cfg.cmd_words)]   # it stays while it is sent
        cmd_word = chunks[0] if len(chunks) == 1 else Mux(d_k == 0, chunks[0], chunks[1])
        assert len(chunks) <= 2
        m.d.comb += node.tx_payload.payload.eq(Mux(d_cmd, cmd_word, Mux(d_k == 0, d_arg, d_word)))
        taken = (node.tx_header.valid & node.tx_header.ready) | (node.tx_payload.valid & node.tx_payload.ready)
        count("ctrl_tx_stall", in_send & ~taken)
        count("gbuf_read_bits", node.tx_payload.valid & node.tx_payload.ready & ~d_cmd & (d_k != 0), W)

        # --- fetch: check and issue ----------------------------------------------------
        # The instruction at pc is kept in a register: imem[0] while idle, imem[pc + 1] loaded
        # when pc moves on (the host writes the instruction memory only while the chip is idle,
        # so the word is the one a read of imem[pc] in the fetch cycle gives; the memory read
        # leaves the path through the checks, the FPGA clock, docs/fpga.md).
        # Its checks are made as it is loaded (they depend on the word only).
        code = Signal(3)
        in_idle = state == CtrlState.IDLE
        # 0 while idle, else pc + 1: a register, no logic before the read. No reset and no initial
        # value in the FPGA flow (fpga/build.py), so that synthesis can merge it into the memory
        # as a block RAM's read address; idle sets it to 0 in a cycle, and a start waits for that.
        raddr = Signal(len(imem_r.addr), name="imem_raddr", reset_less=True)
        m.d.comb += imem_r.addr.eq(raddr)
        loaded = Signal(64)
        loaded_code = Signal(3)
        m.d.comb += loaded.eq(Mux(in_idle & imem_w.en & (imem_w.addr == 0), imem_w.data, imem_r.data))
        self._check(m, cfg, loaded, loaded_code)
        with m.If(in_idle):
            m.d.sync += [word.eq(loaded), code.eq(loaded_code)]
        next_instr = [pc.eq(pc + 1), raddr.eq(raddr + 1), word.eq(loaded), code.eq(loaded_code)]
        opcode = word[:OPCODE_BITS]
        in_fetch = state == CtrlState.FETCH
        fetch_ok = in_fetch & (pend.code == 0) & (pc < cfg.imem_depth) & (code == 0)
        count("instructions", fetch_ok)
        in_wait = state == CtrlState.WAIT
        count("barrier_wait", in_wait & (pend.code == 0) & (outstanding != 0))

        inc = Signal(9)
        # an ACK (late in the cycle: the network's ejection) selects between sums made without it
        m.d.sync += outstanding.eq(Mux(ack, outstanding + inc - 1, outstanding + inc))

        take_start = self.start & self.quiet & (raddr == 0)

        def stop(error=None):
            stmts = [state.eq(CtrlState.IDLE), done.eq(1), raddr.eq(0)]
            if error is not None:
                stmts.append(err.eq(error))
            return stmts

        with m.Switch(state):
            with m.Case(CtrlState.IDLE):
                m.d.sync += raddr.eq(0)
                with m.If(take_start):
                    m.d.sync += [state.eq(CtrlState.FETCH), pc.eq(0), raddr.eq(1), done.eq(0), err.eq(0), pend.eq(0),
                                 outstanding.eq(0)]
            with m.Case(CtrlState.FETCH):
                with m.If(pend.code != 0):
                    m.d.sync += stop(pend)
                with m.Elif(pc >= cfg.imem_depth):
                    m.d.sync += stop() + [err.eq(0), err.code.eq(ErrorCode.IMEM_OVERFLOW), err.pc.eq(pc)]
                with m.Elif(code != 0):
                    m.d.sync += stop() + [err.eq(0), err.code.eq(code), err.pc.eq(pc)]
                with m.Else():
                    self._issue(m, cfg, word, opcode, pc, next_instr, state, stop, inc,
                                dict(cmd=d_cmd, type=d_type, dest=d_dest, len=d_len, count=d_count, v=d_v,
                                     hdr=d_hdr, k=d_k, arg=d_arg, step=d_step, gaddr=d_gaddr, words=d_words))
            with m.Case(CtrlState.SEND):
                walk_packets(m, taken, d_hdr, d_k, d_len, d_v, d_count,
                             next_packet=[d_arg.eq(d_arg + d_step), d_gaddr.eq(d_gaddr + d_words)],
                             done=[state.eq(CtrlState.FETCH), *next_instr])
            with m.Case(CtrlState.WAIT):
                with m.If(pend.code != 0):
                    m.d.sync += stop(pend)
                with m.Elif(outstanding == 0):
                    m.d.sync += [state.eq(CtrlState.FETCH), *next_instr]

        m.d.comb += self.clearing.eq(take_start & in_idle)
        pre = pre_counters(m, incs, period=len(counter_indices(cfg)), clear=self.clearing, running=running,
                           take=self.take)
        m.d.comb += [self.pre[k].eq(p) for k, p in enumerate(pre)]
        return m

    def _check(self, m, cfg, word, code):
        """``code`` = the error of fetching ``word`` (0 if none), as :func:`check_instr` decides."""
        opcode = word[:OPCODE_BITS]
        m.d.comb += code.eq(ErrorCode.ILLEGAL_OPCODE)
        with m.Switch(opcode):
            for name, (op, fields, _) in FORMATS.items():
                with m.Case(op):
                    names = {f.name for f in fields}

                    def fld(n, name=name):
                        return field(word, name, n)
                    conds = []          # (error code, condition), in check order
                    conds.append((ErrorCode.ILLEGAL_OPCODE, (word & ~Const(_used_mask(name), 64)) != 0))
                    if "tx" in names:
                        conds.append((ErrorCode.BAD_TILE, (fld("tx") >= cfg.mesh_x) | (fld("ty") >= cfg.mesh_y)))
                    if "dx" in names:
                        conds.append((ErrorCode.BAD_TILE, (fld("dx") >= cfg.mesh_x) | (fld("dy") >= cfg.mesh_y)
                                      | ((fld("dx") == fld("tx")) & (fld("dy") == fld("ty")))))
                    n = fld("count") if "count" in names else 1
                    words = {Op.OUT: cfg.words_a, Op.OUTQ: cfg.words_q}.get(op, 0)
                    if op in LOAD_PACKET:
                        words = {PacketType.ACT: cfg.words_x, PacketType.WROW: cfg.words_w}.get(
                            LOAD_PACKET[op], cfg.words_a)
                    if words:
                        conds.append((ErrorCode.BAD_GBUF, fld("gaddr") + n * words > cfg.gbuf_words))
                    if "count" in names:
                        conds.append((ErrorCode.BAD_TILE_ADDR, fld("count") == 0))
                    limits = {"ldact": [("slot", cfg.tile_ibuf_depth)], "ldw": [("row", cfg.rows)],
                              "ldpsum": [("slot", cfg.tile_acc_depth)],
                              "mvm": [("a", cfg.tile_ibuf_depth), ("b", cfg.tile_acc_depth)],
                              "read": [("row", cfg.rows), ("b", cfg.tile_acc_depth)],
                              "out": [("b", cfg.tile_acc_depth)], "outq": [("b", cfg.tile_acc_depth)],
                              "psum": [("b", cfg.tile_acc_depth), ("d", cfg.tile_acc_depth)]}
                    for fname, lim in limits.get(name, []):
                        conds.append((ErrorCode.BAD_TILE_ADDR, fld(fname) + n > lim))
                    # the first failing check wins: assign in reverse order
                    m.d.comb += code.eq(0)
                    for c, cond in reversed(conds):
                        with m.If(cond):
                            m.d.comb += code.eq(c)

    def _issue(self, m, cfg, word, opcode, pc, next_instr, state, stop, inc, d):
        """The fetch cycle of a good instruction."""
        with m.Switch(opcode):
            with m.Case(Op.NOP):
                m.d.sync += next_instr
            with m.Case(Op.HALT):
                m.d.sync += stop()
            with m.Case(Op.BARRIER):
                m.d.sync += state.eq(CtrlState.WAIT)
            for name, (op, fields, _) in FORMATS.items():
                if op in (Op.NOP, Op.HALT, Op.BARRIER):
                    continue
                with m.Case(op):
                    names = {f.name for f in fields}
                    common = [state.eq(CtrlState.SEND), d["v"].eq(0), d["hdr"].eq(1), d["k"].eq(0),
                              d["dest"].x.eq(field(word, name, "tx")), d["dest"].y.eq(field(word, name, "ty")),
                              d["dest"].ctrl.eq(0)]
                    if op in LOAD_PACKET:
                        ptype = LOAD_PACKET[op]
                        words = {PacketType.ACT: cfg.words_x, PacketType.WROW: cfg.words_w}.get(ptype, cfg.words_a)
                        if op == Op.LDW:
                            arg = Cat(field(word, name, "row"), Const(0, 4), pc[:16])
                        elif op == Op.LDBIAS:
                            arg = 0
                        else:
                            arg = field(word, name, "slot")
                        m.d.sync += common + [
                            d["cmd"].eq(0), d["type"].eq(ptype), d["len"].eq(1 + words),
                            d["count"].eq(field(word, name, "count") if "count" in names else 1),
                            d["arg"].eq(arg), d["step"].eq(op != Op.LDBIAS),
                            d["gaddr"].eq(field(word, name, "gaddr")), d["words"].eq(words)]
                    else:
                        m.d.sync += common + [
                            d["cmd"].eq(1), d["type"].eq(PacketType.CMD), d["len"].eq(cfg.cmd_words),
                            d["count"].eq(1), d["step"].eq(0), d["words"].eq(0)]
                        if op == Op.SYNC:
                            m.d.comb += inc.eq(1)
                        elif op == Op.PSUM:
                            m.d.comb += inc.eq(field(word, name, "count"))
