"""Verilog output of rramcim blocks, ready for other tools as they come (their default settings).

The crossbar is emitted as its own module, once per configuration, ahead of
the blocks that instantiate it by name (as a foundry flow would swap in a
hard RRAM macro).

Each block's Verilog is made by ``amaranth.back.verilog.convert`` (through
Amaranth's Yosys), one call per module group, and then finished here so that
downstream tools need no project-specific flag:

* **One top.** Every ``convert`` marks its module ``(* top = 1 *)``; the
  crossbar converted separately would be a second top, and ``yosys
  read_verilog; synth`` without ``-top`` (or ``hierarchy -auto-top``) would
  then synthesise the crossbar alone. Only the block's top keeps the mark.
* **Combinational processes run at time zero on every simulator mode.**
  See :func:`_wake_processes_at_time_zero`.
* **A name of your choice** for the top module (``name=``; its submodules
  are named after it), and **header comment lines** (``header=``: the
  caller says what made the file; rtl/ knows nothing of the CLI).

The FPGA board core's Verilog (block ``board``) is generated in fpga/verilog.py:
rtl/ never imports fpga/.
"""

import hashlib
import re
from collections.abc import Iterable

from amaranth.back import verilog

from ..model.config import Config
from ..model.macro import FaultMap
from .crossbar import Crossbar, crossbar_module_name
from .macro import Macro

__all__ = ["crossbar_verilog", "macro_verilog", "mesh_verilog", "router_verilog", "MACRO_TOP",
           "MESH_TOP", "ROUTER_TOP", "BLOCKS", "block_verilog", "chip_verilog", "chip_faults", "CHIP_TOP",
           "TOP", "top_verilog", "with_crossbars", "convert", "check_top_name", "config_hash",
           "module_names", "top_modules"]


# -- finishing Amaranth's Verilog for downstream tools ------------------------------------------------------

# The always-false `if` Yosys puts first in every `always @*` block it writes: it reads the trigger
# register, so the trigger's time-zero event wakes the block (Yosys's write_verilog, non-SV mode).
_TRIGGER_USE = re.compile(r"^\s*if \((\\\S+ )\) begin end$", re.M)
_MODULE = re.compile(r"^module .*?^endmodule$", re.M | re.S)


def _wake_processes_at_time_zero(text: str) -> str:
    r"""Make every ``always @*`` block of Yosys's Verilog run once at time zero, under Verilog-2005
    and SystemVerilog semantics alike (Icarus ``-g2005`` and ``-g2012``; Verilator either way).

    An ``always @*`` block waits for a change of what it reads before it first runs. Yosys makes each
    one read a register declared ``reg T = 0;``. Under IEEE 1364 that initializer is an
    initial-block assignment at time zero: T goes x -> 0 while the blocks wait, and wakes them all.
    Under IEEE 1800 (10.5) a declaration initializer is applied *before* any process starts, with
    no event: the blocks sleep until an input changes, the flip-flops they feed load X at the first
    clock edge over their ``= 0`` initial values, and the X then feeds itself (most of the tiny chip
    core's nets stay X after reset and a GEMM never finishes on Icarus -g2012).

    Here T is declared without initializer and set by a *nonblocking* assignment in an initial
    block. Its update (x -> 0) happens in the NBA region of time zero, after every process has
    started and reached its first wait, in both standards: no time-zero race (a blocking ``initial
    T = 0`` would race the always blocks' start). Declaration initializers of real registers and
    memory initial blocks run earlier (before time zero, or in the active region), so each block's
    first run already sees the initial state. Verilator runs ``always @*`` as combinational logic
    without regard to T (its INITIALDLY note, waived in place below, says the NBA acts as a blocking
    assignment there); Yosys synthesis drops T (never driven, read only by an empty ``if``): the
    synthesised netlist is the same.
    """
    def fix(module: re.Match) -> str:
        body = module.group(0)
        for t in sorted(set(_TRIGGER_USE.findall(body))):
            decl = re.compile(rf"^(\s*)reg {re.escape(t)} = 0;$", re.M)
            body, n = decl.subn(lambda m: (
                f"{m[1]}// Wakes the always @* blocks at time 0 under Verilog-2005 and SystemVerilog alike\n"
                f"{m[1]}// (an NBA at time 0; see the Python module rramcim.rtl.verilog).\n"
                f"{m[1]}reg {t};\n"
                f"{m[1]}/* verilator lint_off INITIALDLY */\n"
                f"{m[1]}initial {t}<= 1'b0;\n"
                f"{m[1]}/* verilator lint_on INITIALDLY */"), body)
            if n != 1:      # a Yosys whose Verilog this does not know: fail loudly, not make X silently
                raise RuntimeError(f"Yosys's Verilog: {n} declarations 'reg {t} = 0;' of the always @* trigger "
                                   f"in {body.splitlines()[0][:80]!r} (expected 1)")
        return body
    return _MODULE.sub(fix, text)


_TOP_ATTR = re.compile(r"^\(\* top = +1 +\*\)\n", re.M)


def _unmark_top(text: str) -> str:
    """``text`` (one ``convert`` output) without its ``(* top = 1 *)`` attribute."""
    text, n = _TOP_ATTR.subn("", text)
    if n != 1:
        raise RuntimeError(f"Amaranth's Verilog has {n} '(* top = 1 *)' attributes (expected 1)")
    return text


def convert(elaboratable, name: str, *, top: bool = True) -> str:
    """``amaranth.back.verilog.convert`` of ``elaboratable`` as module ``name``, finished for downstream
    tools (:func:`_wake_processes_at_time_zero`); ``top=False`` for a module that others instantiate."""
    text = _wake_processes_at_time_zero(verilog.convert(elaboratable, name=name, emit_src=False))
    return text if top else _unmark_top(text)


def module_names(text: str) -> list[str]:
    """The names of the modules ``text`` defines, in order (escaped names without their backslash)."""
    return re.findall(r"^module \\?(\S+?) ?\(", text, flags=re.M)


def top_modules(text: str) -> list[str]:
    """The modules of ``text`` marked ``(* top = 1 *)``."""
    return re.findall(r"^\(\* top = +1 +\*\)\n(?:\(\*.*\*\)\n)*module \\?(\S+?) ?\(", text, flags=re.M)


# IEEE 1800-2017 Annex B (which holds every IEEE 1364-2005 keyword): names a top module must not take.
_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin bind
bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking cmos config
const constraint context continue cover covergroup coverpoint cross deassign default defparam design disable
dist do edge else end endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup
endinterface endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask
enum event eventually expect export extends extern final first_match for force foreach forever fork forkjoin
function generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import
incdir include initial inout input inside instance int integer interconnect interface intersect join join_any
join_none large let liblist library local localparam logic longint macromodule matches medium modport module
nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed
parameter pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup
pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime ref reg
reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime
s_until s_until_with scalared sequence shortint shortreal showcancelled signed small soft solve specify
specparam static string strong strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on
table tagged task this throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior
trireg type typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void
wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())


def check_top_name(name: str, cfg: Config, faults: FaultMap | None = None) -> str:
    """``name`` if it can name a block's top module: a simple Verilog identifier (letters, digits and
    ``_``, not starting with a digit; no ``$``, which some tools reject), not a (System)Verilog keyword,
    and not the name of a crossbar module of ``cfg`` that the file may also hold. ``ValueError`` if not."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a Verilog identifier (letters, digits and '_', not starting with a digit)")
    if name in _KEYWORDS:
        raise ValueError(f"{name!r} is a (System)Verilog keyword")
    taken = {crossbar_module_name(cfg), crossbar_module_name(cfg, faults)}
    if name in taken:
        raise ValueError(f"{name!r} is the name of the crossbar module the file holds")
    return name


def config_hash(cfg: Config) -> str:
    """The first 16 hex digits of the SHA-256 of ``cfg`` as canonical JSON (sorted keys; name included)."""
    return hashlib.sha256(cfg.key().encode()).hexdigest()[:16]


# -- the blocks -----------------------------------------------------------------------------------------

MACRO_TOP = "rramcim_macro"


def crossbar_verilog(cfg: Config, faults: FaultMap | None = None, name: str | None = None, *,
                     top: bool = True) -> str:
    """The crossbar module of ``cfg`` (and fault map) alone; ``top=False`` for a file where it is not the top."""
    return convert(Crossbar(cfg, faults), name or crossbar_module_name(cfg, faults), top=top)


def macro_verilog(cfg: Config, faults: FaultMap | None = None, name: str = MACRO_TOP) -> str:
    """The macro (top module ``rramcim_macro`` or ``name``) and its crossbar module."""
    top = convert(Macro(cfg, faults, hard_crossbar=True), name)
    return crossbar_verilog(cfg, faults, top=False) + "\n" + top


MESH_TOP = "rramcim_mesh"
ROUTER_TOP = "rramcim_router"


def mesh_verilog(cfg: Config, faults: FaultMap | None = None, name: str = MESH_TOP) -> str:
    """The network of ``cfg``: routers, links and NIs (top module ``rramcim_mesh`` or ``name``)."""
    from .noc.mesh import Mesh
    return convert(Mesh(cfg), name)


def router_verilog(cfg: Config, faults: FaultMap | None = None, name: str = ROUTER_TOP) -> str:
    """One router of ``cfg``, placed at the centre of the mesh (all five ports used where it can)."""
    from .noc.router import Router
    return convert(Router(cfg, cfg.mesh_x // 2, cfg.mesh_y // 2), name)


CHIP_TOP = "rramcim_core"


def chip_faults(cfg: Config, faults: FaultMap | None) -> dict:
    """A chip build's fault map applies to its last tile, ``(mesh_x - 1, mesh_y - 1)``."""
    return {(cfg.mesh_x - 1, cfg.mesh_y - 1): faults} if faults else {}


def with_crossbars(cfg: Config, faults: FaultMap | None, top: str) -> str:
    """``top`` (Verilog whose top module is marked) preceded by the crossbar modules it instantiates
    (fault-free, and the faulty one), which are not marked top."""
    xbars = crossbar_verilog(cfg, top=False)
    if faults:
        xbars += "\n" + crossbar_verilog(cfg, faults, top=False)
    return xbars + "\n" + top


def chip_verilog(cfg: Config, faults: FaultMap | None = None, name: str = CHIP_TOP) -> str:
    """The chip core (top module ``rramcim_core`` or ``name``) and its crossbar modules.

    ``faults`` (stuck cells) apply to the last tile (:func:`chip_faults`).
    """
    from .chip import ChipCore
    core = ChipCore(cfg, chip_faults(cfg, faults), hard_crossbar=True)
    return with_crossbars(cfg, faults, convert(core, name))


TOP = "rramcim_chip"


def top_verilog(cfg: Config, faults: FaultMap | None = None, name: str = TOP) -> str:
    """The whole chip behind its AXI ports (top module ``rramcim_chip`` or ``name``) and its crossbar modules.

    ``faults`` (stuck cells, simulation) apply to the last tile (:func:`chip_faults`).
    """
    from .top import ChipTop
    chip = ChipTop(cfg, chip_faults(cfg, faults), hard_crossbar=True)
    return with_crossbars(cfg, faults, convert(chip, name))


#: block name -> (default top module name, or None for the crossbar's own; function(cfg, faults, name)).
BLOCKS = {
    "macro": (MACRO_TOP, macro_verilog),
    "crossbar": (None, crossbar_verilog),
    "mesh": (MESH_TOP, mesh_verilog),
    "router": (ROUTER_TOP, router_verilog),
    "core": (CHIP_TOP, chip_verilog),
    "chip": (TOP, top_verilog),
}


def block_verilog(block: str, cfg: Config, faults: FaultMap | None = None, blocks: dict | None = None, *,
                  top_name: str | None = None, header: Iterable[str] = ()) -> tuple[str, str]:
    """``(top module name, Verilog text)`` of a named block of ``blocks`` (default :data:`BLOCKS`;
    fpga/verilog.py adds the board core).

    ``top_name`` names the top module (checked by :func:`check_top_name`); ``header`` lines go first,
    each as a ``//`` comment. Exactly one module of the text is marked ``(* top = 1 *)``: the top.
    """
    blocks = BLOCKS if blocks is None else blocks
    if block not in blocks:
        raise ValueError(f"unknown block {block!r} (known: {', '.join(blocks)})")
    default, fn = blocks[block]
    top = check_top_name(top_name, cfg, faults) if top_name is not None else (default or crossbar_module_name(cfg, faults))
    text = fn(cfg, faults, name=top)
    names, tops = module_names(text), top_modules(text)
    if names.count(top) != 1 or tops != [top]:    # a new block that breaks the rules must not pass silently
        raise RuntimeError(f"block {block}: module {top} defined {names.count(top)} times, top modules {tops}")
    lines = [line.replace("\r", " ").replace("\n", " ") for line in header]
    return top, "".join(f"// {line}\n" for line in lines) + text
