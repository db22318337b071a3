"""The jet classes jetfm generates and names: one table, the source of every list of classes.

Each entry holds what every layer needs to know about one class: its process name in the CLI and
tools, its JetClass one-hot branch, how Pythia makes it and which truth decay the jet must contain,
its physics (prongs, nominal mass, flavour), and the words people use for it (captions, zero-shot
labels, the assistant's vocabulary). Adding a class is adding one entry here; a class's label index
is its position in ``JET_CLASSES``, so new classes go at the end (saved label indices stay valid).

The ten classes are JetClass's (Qu et al., 2022): q/g, H->bb, H->cc, H->gg, H->WW*->4q,
H->WW*->l nu qq', Z->qq, W->qq', t->bW->bqq' and t->bW->b l nu. Nominal masses are the PDG's.
"""

from __future__ import annotations

from dataclasses import dataclass

# Hard processes. Each signal process is forced into the decay its class is named for.
_HIGGS = ("HiggsSM:gg2Hg(l:t) = on", "HiggsSM:qg2Hq(l:t) = on", "HiggsSM:qqbar2Hg(l:t) = on", "25:onMode = off")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "6:onMode = off", "6:onIfAny = 5")
_W_HADRONIC = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
# One W leptonic (e or mu; W+), the other hadronic (W-): t -> b l nu beside a hadronic tbar, and
# H -> W W* -> l nu qq'. The truth rule below picks the decay with the lepton.
_W_ONE_LEPTONIC = ("24:onMode = off", "24:onPosIfAny = 11 13", "24:onNegIfAny = 1 2 3 4 5")


@dataclass(frozen=True)
class JetClass:
    name: str  # process name in the CLI and the tools
    label_branch: str  # JetClass one-hot branch
    title: str  # plot legend (matplotlib mathtext)
    summary: str  # one line for tool descriptions and prompts
    pythia: tuple[str, ...]  # hard-process and decay settings
    resonance: int | None  # PDG id of the particle whose decay makes the jet (None: QCD)
    leptons: int  # charged leptons (e, mu) among the visible decay products the jet must contain
    prongs: int  # partonic prongs of the decay (leptons count as prongs)
    nominal_mass: float | None  # GeV
    # Words: noun phrases for captions ("a {name}"), the zero-shot label, the decay and content.
    names: tuple[str, ...]
    label: str
    decay: str
    flavour: str
    # Words a user may type for this class: the assistant's lexicon and its training phrasings.
    synonyms: tuple[str, ...]
    # What a physicist knows of the jet's origin without naming the class: noun phrases that fit
    # "a jet from ..." (the parent's charge, spin, mass, role, decay). Training captions use them so
    # that the alignment learns the physics behind a class, not only its name.
    facts: tuple[str, ...] = ()


JET_CLASSES: tuple[JetClass, ...] = (
    JetClass(
        name="qcd",
        label_branch="label_QCD",
        title="QCD (q/g)",
        summary="light quark/gluon background, one-prong, falling mass",
        pythia=("HardQCD:all = on",),
        resonance=None,
        leptons=0,
        prongs=1,
        nominal_mass=None,
        names=("QCD jet", "light-quark or gluon jet", "QCD multijet background jet", "quark or gluon initiated jet"),
        label="QCD light-quark or gluon",
        decay="initiated by a light quark or a gluon",
        flavour="with no heavy resonance inside",
        synonyms=(
            "QCD", "qcd", "light-quark/gluon", "light quark and gluon", "QCD background", "QCD multijet", "light"
        ),
        facts=(
            "an ordinary light parton with no heavy resonance behind it",
            "the showering of a single light quark or gluon",
            "hard strong-interaction scattering of light partons",
            "the multijet production that dominates hadron colliders",
            "dijet production, the commonest hard process at the LHC",
            "a gluon or an up, down or strange quark",
            "plain strong-interaction radiation",
            "the background to every boosted-resonance search",
        ),
    ),
    JetClass(
        name="top",
        label_branch="label_Tbqq",
        title=r"$t \to bqq'$",
        summary="hadronic top t->bqq', three-prong, mass ~173 GeV",
        pythia=(*_TTBAR, *_W_HADRONIC),
        resonance=6,
        leptons=0,
        prongs=3,
        nominal_mass=173.0,
        names=("top quark jet", "hadronic top jet", "t to bqq' jet", "boosted top quark jet"),
        label="top quark",
        decay="from a hadronic top quark decay t -> bW -> bqq'",
        flavour="with one b-quark prong and a W boson",
        synonyms=("top", "top quark", "hadronic top", "t->bqq'", "boosted top", "top-quark", "ttbar", "t->bW->bqq"),
        facts=(
            "the most massive of the six quarks",
            "the 173 GeV quark, too short-lived to form hadrons",
            "the third-generation up-type quark",
            "a top-antitop pair decaying hadronically",
            "a quark that yields a b quark and a W boson, which gives two quarks",
            "the quark with the largest Yukawa coupling",
            "the three-body hadronic decay of the 173 GeV quark",
        ),
    ),
    JetClass(
        name="wqq",
        label_branch="label_Wqq",
        title=r"$W \to qq'$",
        summary="hadronic W->qq', two-prong, ~80 GeV",
        pythia=("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_W_HADRONIC),
        resonance=24,
        leptons=0,
        prongs=2,
        nominal_mass=80.4,
        names=("W boson jet", "hadronic W jet", "W to qq' jet", "boosted W boson jet"),
        label="W boson",
        decay="from a hadronic W boson decay W -> qq'",
        flavour="with two light-quark prongs",
        synonyms=("W", "W boson", "W->qq", "hadronic W", "W->qq'", "boosted W"),
        facts=(
            "the charged electroweak gauge boson",
            "an 80 GeV gauge boson decaying to quarks",
            "the carrier of the charged-current weak force",
            "the boson that mediates beta decay",
            "a W plus or W minus that splits into a quark and an antiquark of another flavour",
            "a weak boson that changes quark flavour",
            "the lighter of the two massive weak bosons",
        ),
    ),
    JetClass(
        name="zqq",
        label_branch="label_Zqq",
        title=r"$Z \to q\bar{q}$",
        summary="hadronic Z->qq, two-prong, ~91 GeV",
        pythia=(
            "WeakBosonAndParton:qqbar2gmZg = on",
            "WeakBosonAndParton:qg2gmZq = on",
            "WeakZ0:gmZmode = 2",
            "23:onMode = off",
            "23:onIfAny = 1 2 3 4 5",
        ),
        resonance=23,
        leptons=0,
        prongs=2,
        nominal_mass=91.2,
        names=("Z boson jet", "hadronic Z jet", "Z to qq jet", "boosted Z boson jet"),
        label="Z boson",
        decay="from a hadronic Z boson decay Z -> qq",
        flavour="with a quark-antiquark pair",
        synonyms=("Z", "Z boson", "Z->qq", "hadronic Z", "Z->qqbar"),
        facts=(
            "the neutral electroweak gauge boson",
            "a 91 GeV gauge boson that becomes a quark-antiquark pair",
            "the carrier of the neutral-current weak force",
            "the heavier of the two massive weak bosons",
            "a Z zero that splits into a quark and its own antiquark",
            "an uncharged massive weak boson",
        ),
    ),
    JetClass(
        name="hbb",
        label_branch="label_Hbb",
        title=r"$H \to b\bar{b}$",
        summary="H->bb, two b prongs, ~125 GeV",
        pythia=(*_HIGGS, "25:onIfMatch = 5 -5"),
        resonance=25,
        leptons=0,
        prongs=2,
        nominal_mass=125.0,
        names=("Higgs to bb jet", "H to b b-bar jet", "Higgs to b-quark jet", "boosted Higgs to bb jet"),
        label="Higgs boson to b quarks",
        decay="from a Higgs boson decay H -> bb",
        flavour="with two b-quark prongs",
        synonyms=("Higgs", "H->bb", "Higgs to bb", "h->bb", "H(bb)", "Hbb", "higgs->bbbar"),
        facts=(
            "the 125 GeV scalar, in its decay into a bottom-antibottom pair",
            "the boson of electroweak symmetry breaking, in its decay into a bottom-antibottom pair",
            "the only spin-zero elementary particle known, in its decay into a bottom-antibottom pair",
            "the Brout-Englert-Higgs boson, in its decay into a bottom-antibottom pair",
            "a pair of bottom quarks from a scalar resonance",
            "the 125 GeV scalar in its commonest decay, to b quarks",
            "the boson of electroweak symmetry breaking in its commonest decay, to b quarks",
        ),
    ),
    JetClass(
        name="hcc",
        label_branch="label_Hcc",
        title=r"$H \to c\bar{c}$",
        summary="H->cc, two c prongs, ~125 GeV",
        pythia=(*_HIGGS, "25:onIfMatch = 4 -4"),
        resonance=25,
        leptons=0,
        prongs=2,
        nominal_mass=125.0,
        names=("Higgs to cc jet", "Higgs to charm jet", "H to c c-bar jet", "boosted Higgs to charm jet"),
        label="Higgs boson to charm quarks",
        decay="from a Higgs boson decay H -> cc",
        flavour="with two charm-quark prongs",
        synonyms=("H->cc", "Higgs to cc", "Higgs to charm", "h->cc", "H(cc)", "Hcc", "charm"),
        facts=(
            "the 125 GeV scalar, in its decay into charm and anticharm quarks",
            "the boson of electroweak symmetry breaking, in its decay into charm and anticharm quarks",
            "the only spin-zero elementary particle known, in its decay into charm and anticharm quarks",
            "the Brout-Englert-Higgs boson, in its decay into charm and anticharm quarks",
            "a pair of charm quarks from a scalar resonance",
            "the 125 GeV scalar in a rare decay to c quarks",
            "the boson of electroweak symmetry breaking in a rare decay to c quarks",
        ),
    ),
    JetClass(
        name="hgg",
        label_branch="label_Hgg",
        title=r"$H \to gg$",
        summary="H->gg, two gluon prongs, ~125 GeV",
        pythia=(*_HIGGS, "25:onIfMatch = 21 21"),
        resonance=25,
        leptons=0,
        prongs=2,
        nominal_mass=125.0,
        names=("Higgs to gluons jet", "H to gg jet", "Higgs to two gluons jet", "boosted Higgs to gluon jet"),
        label="Higgs boson to gluons",
        decay="from a Higgs boson decay H -> gg",
        flavour="with two gluon prongs",
        synonyms=("H->gg", "Higgs to gluons", "Higgs to gg", "h->gg", "H(gg)", "Hgg", "H to gluon gluon",
                  "Higgs to gluon gluon", "H to two gluons", "Higgs to two gluons", "H to gluons"),
        facts=(
            "the 125 GeV scalar, in its decay into two gluons through a top-quark loop",
            "the boson of electroweak symmetry breaking, in its decay into two gluons through a top-quark loop",
            "the only spin-zero elementary particle known, in its decay into two gluons through a top-quark loop",
            "the Brout-Englert-Higgs boson, in its decay into two gluons through a top-quark loop",
            "a pair of gluons from a colourless scalar resonance",
            "the 125 GeV scalar in its loop-induced decay to gluons",
            "the boson of electroweak symmetry breaking in its loop-induced decay to gluons",
        ),
    ),
    JetClass(
        name="h4q",
        label_branch="label_H4q",
        title=r"$H \to WW^* \to 4q$",
        summary="H->WW*->4q, four-prong, ~125 GeV",
        pythia=(*_HIGGS, "25:onIfMatch = 24 -24", *_W_HADRONIC),
        resonance=25,
        leptons=0,
        prongs=4,
        nominal_mass=125.0,
        names=("Higgs to four quarks jet", "H to WW* to 4q jet", "four-quark Higgs jet", "boosted H to 4q jet"),
        label="Higgs boson to four quarks",
        decay="from a Higgs boson decay H -> WW* -> qqqq",
        flavour="with four light-quark prongs",
        synonyms=("H->4q", "H->WW*->4q", "Higgs to four quarks", "h->4q", "H4q", "four-prong Higgs"),
        facts=(
            "the 125 GeV scalar, in its decay into two W bosons and then four quarks",
            "the boson of electroweak symmetry breaking, in its decay into two W bosons and then four quarks",
            "the only spin-zero elementary particle known, in its decay into two W bosons and then four quarks",
            "the Brout-Englert-Higgs boson, in its decay into two W bosons and then four quarks",
            "a fully hadronic W-pair decay of a scalar resonance",
            "the 125 GeV scalar giving four light quarks via two W bosons",
            "the boson of electroweak symmetry breaking giving four light quarks via two W bosons",
        ),
    ),
    JetClass(
        name="hlvqq",
        label_branch="label_Hqql",
        title=r"$H \to \ell\nu qq'$",
        summary="H->WW*->l nu qq', a lepton and two prongs, ~125 GeV (visible mass lower)",
        pythia=(*_HIGGS, "25:onIfMatch = 24 -24", *_W_ONE_LEPTONIC),
        resonance=25,
        leptons=1,
        prongs=3,
        nominal_mass=125.0,
        names=("semileptonic Higgs jet", "H to l nu qq' jet", "Higgs to lepton neutrino quarks jet",
               "boosted H to WW* semileptonic jet"),
        label="Higgs boson to a lepton, a neutrino and two quarks",
        decay="from a Higgs boson decay H -> WW* -> l nu qq'",
        flavour="with a lepton and two light-quark prongs",
        synonyms=(
            "H->lvqq", "H->WW*->lvqq", "semileptonic Higgs", "Higgs to lepton neutrino quarks", "Hlvqq", "H->qql"
        ),
        facts=(
            "the 125 GeV scalar, in its decay into two W bosons, one leptonic and one hadronic",
            "the boson of electroweak symmetry breaking, in its decay into two W bosons, one leptonic and one hadronic",
            "the only spin-zero elementary particle known, in its decay into two W bosons, one leptonic and one"
            " hadronic",
            "the Brout-Englert-Higgs boson, in its decay into two W bosons, one leptonic and one hadronic",
            "a semileptonic W-pair decay of a scalar resonance",
            "the 125 GeV scalar giving one lepton, one neutrino and a quark pair",
            "the boson of electroweak symmetry breaking giving one lepton, one neutrino and a quark pair",
        ),
    ),
    JetClass(
        name="tbl",
        label_branch="label_Tbl",
        title=r"$t \to b\ell\nu$",
        summary="leptonic top t->b l nu, a b prong and a lepton (visible mass below 173 GeV)",
        pythia=(*_TTBAR, *_W_ONE_LEPTONIC),
        resonance=6,
        leptons=1,
        prongs=2,
        nominal_mass=173.0,
        names=("leptonic top jet", "t to b l nu jet", "semileptonic top decay jet", "boosted leptonic top jet"),
        label="leptonic top quark",
        decay="from a leptonic top quark decay t -> bW -> b l nu",
        flavour="with one b-quark prong and a lepton",
        synonyms=("t->blv", "leptonic top", "semileptonic top", "t->b l nu", "Tbl", "top to lepton"),
        facts=(
            "a top quark whose W boson decays leptonically, to electron or muon plus neutrino",
            "a semileptonic top decay with a charged lepton inside the jet",
            "the 173 GeV quark yielding a b quark, a lepton and missing energy",
            "the most massive quark, decaying leptonically",
        ),
    ),
)

CLASSES: dict[str, JetClass] = {c.name: c for c in JET_CLASSES}
# Process names in label order: a jet's label index is its class's position here.
PROCESSES: tuple[str, ...] = tuple(CLASSES)


def jet_class(name: str) -> JetClass:
    from jetfm.backbone.data.errors import DataError

    if name not in CLASSES:
        raise DataError(f"unknown process {name!r}; choose from {', '.join(PROCESSES)}")
    return CLASSES[name]


def classes_help() -> str:
    """``qcd (light quark/gluon ...), top (...), ...``: the classes for tool descriptions."""
    return ", ".join(f"{c.name} ({c.summary})" for c in JET_CLASSES)
