"""The actions of a request, in order: "describe hbb_test and then plot its tau21" asks for two
things, "generate 6k W and Z jets, embed them, then build an index" for three.

A request is cut where a new action starts: at ", ", "; ", "then", or an "and" followed by an
action word ("5k top and 5k QCD jets" stays whole). A piece without an action word ("..., 500
steps") belongs to the action before it. Each action lists the tools its words may mean (the
model chooses among all tools; these are proposals):

    action_clauses("index mix10 and find the 5 nearest neighbours of jet 0")
    -> [Clause("index mix10", ("build_index",)),
        Clause("find the 5 nearest neighbours of jet 0", ("search_similar", "search_text", ...))]

The router uses them when a request has two actions or more: the plan does not end before each
has had a call, the model's choice of the next tool leans towards the next action's tools, and the
numbers and back-references ("it", "them") of a call are read in its own action's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from jetfm.agent.lexicon import find_terms

# Words that start an action, by the tools they may mean. Prefixes: "simulat" covers simulate(d).
ACTION_WORDS: dict[str, tuple[str, ...]] = {
    "describe_dataset": ("describe", "summari", "summary", "overview", "statistics", "stats", "inspect",
                         "how many jets", "average", "on average", "what's in", "what is in", "whats in", "wat's in",
                         "what's inside", "contents of", "class counts", "quantiles", "mean and spread"),
    "plot_observable": ("plot", "histogram", "draw", "distribution", "spectrum", "spectra", "how it's distributed",
                        "how it is distributed", "how is it distributed", "how they are distributed",
                        "how are they distributed", "how they're distributed"),
    "show_jet": ("show jet", "show me jet", "display jet", "event display", "show entry", "show me entry",
                 "look at jet", "see jet", "view jet", "look at entry",
                 "eta-phi plane", "eta-phi map", "in the eta-phi"),
    "generate_dataset": ("generat", "gen ", "simulat", "produce", "producing", "make"),
    "import_dataset": ("import", "register", "ingest", "load the file", "read the file", "bring in", "bring it in",
                       "bring them in", "bring that in"),
    "pretrain": ("pretrain", "pre-train", "pre train"),
    "finetune": ("fine-tun", "finetun", "fine tun", "train a classifier", "train a tagger", "linear probe",
                 "train a linear", "probe", "from scratch", "from-scratch", "to separate", "to distinguish",
                 "to discriminate", "tell apart", "from random init", "randomly initiali", "from random weights"),
    "evaluate": ("evaluat", "test it", "test the", "benchmark", "measure the auc", "roc curve", "what auc",
                 "score it"),
    "embed": ("embed", "feature vector", "representation vector", "latent vector", "latent representation"),
    "build_index": ("index", "faiss", "hnsw", "ivf", "product-quanti", "product quanti"),  # see NAMING_WORDS
    # "neighbours of jet 4" asks for a search; "use 25 neighbours" is a kNN setting of another tool
    "search_similar": ("similar", "nearest", "neighbours of", "neighbors of", "neighbour of", "neighbor of",
                       "resembl", "look like", "looks like", "looking like", "closest"),
    "search_text": ("find", "search", "look for", "look through", "show me", "retrieve", "fetch", "pull up",
                    "pull the", "pull out",
                    "grab", "best match", "that match", "which match"),
    "anomaly_scan": ("anomal", "outlier", "weird", "stand out", "unusual", "scan", "anything strange",
                     "strange jets", "strange-looking", "anything odd", "out of place", "can't account for",
                     "cannot account for", "can't explain", "cannot explain", "hardest to reconstruct"),
    "zero_shot_classify": ("zero-shot", "zero shot", "classify", "label them"),
    "cancel_job": ("cancel", "kill", "abort", "scrap", "ditch", "call off", "stop the job", "stop job", "terminate",
                   "stop that", "stop this",
                   "stop the run", "stop the training", "stop the pretrain", "stop my", "stop it", "halt"),
    "job_status": ("status", "progress", "check job", "check on", "how is job", "how far", "getting on",
                   "coming along", "how's it going", "how is it going", "finished yet", "through yet", "over yet",
                   "still chewing on",
                   "done yet", "ready yet", "complete yet", "still running", "is it done", "is it finished",
                   "has it finished", "is that done", "is that finished"),
    "list_artifacts": ("list", "what do i have", "which datasets", "which models", "what models", "what datasets",
                       "my datasets", "my models", "my indexes", "my indices", "my jobs", "my embeddings",
                       "my workspace", "have i made", "have i built", "have i created", "have i generated",
                       "have i trained", "everything that's left", "what's left in", "everything in the workspace",
                       "what is in the workspace", "what's in the workspace", "what's in my workspace"),
}
# Words that name a tool's subject but never start an action of their own: ", product-quantised IVF"
# says how to do the action before it.
NAMING_WORDS = ("faiss", "hnsw", "ivf", "product-quanti", "product quanti")
# Words that start an action without naming its tool: "and restart the pretraining on run2".
STARTING_WORDS = ("restart", "rerun", "re-run", "redo", "relaunch", "re-launch", "resubmit", "launch", "start",
                  "kick off", "run", "train ")
_THEN = r"(?:then|afterwards|after that|after this|finally|and also|as well as|followed by)"
# A sentence's end is a separator too ("How good is my tagger? Evaluate it."), but not the point of a
# number (0.8), a path (run.root) or an abbreviation's letter ("e.g. W").
_SENTENCE_END = r"(?<![\s.]\w)(?<!\bno)[.?!]+\s+"  # "jet no. 7" goes on
_SEPARATOR = re.compile(
    rf"\s*(?:[,;]\s*(?:and\s+)?(?:{_THEN}\s+)?|\s(?:and\s+)?{_THEN}\s+)|{_SENTENCE_END}(?:{_THEN}\s+)?", re.I)


# A request's polite lead-in to its action word: "give me a summary", "get us a histogram".
_ASKING = re.compile(r"(?:give|get|show|tell|send|make|do)\s+(?:me|us)\s+(?:(?:an|a|the|its|their|some)\s+)?", re.I)
# What may come before an action's word: a lead-in up to a colon and a "first" ("In jetclass_mix: first
# the 10 jets that best match ...", "I need a baseline to compare against: train a classifier ...").
_LEAD_IN = re.compile(r"^(?:[^:\n]*:\s+)?(?:first(?:ly)?|to start|to begin)?[\s,]*", re.I)
# An action named by what it makes, after "and": "the summary table for X and a tau32 histogram as well".
_PRODUCT = re.compile(r"(?:also\s+)?(?:a|an|the|some)\s+(?:[^\s,;.]+\s+){0,2}?(?:histogram|plot|summary|overview)s?\b",
                      re.I)
_BARE_PRODUCT = re.compile(r"(?:[^\s,;.]+\s+){1,3}?(?:histogram|plot|distribution)s?\b", re.I)
# A value taken back: "sorry, make that seed 8", "I mean 3e-4".
_CORRECTING = re.compile(r"(?:(?:sorry|oops|no|wait|actually)[\s,]+)*(?:make (?:that|it)|i mean|i meant|or rather"
                         r"|scratch that|correction)\b", re.I)
# The action word as a noun after a count: "one histogram per class", "a single curve", "two plots".
_HOW = re.compile(r"(?:one|a|an|a single|single|separate|two|three)\s+(?:\w+\s+)?(?:histograms?|plots?|curves?"
                  r"|panels?|distributions?)\b", re.I)
# Words that open a qualification of the action before ("but only on tops", "though just 500 steps",
# "..., to separate W from QCD": its purpose).
_QUALIFIER = re.compile(r"(?:but|though|although|yet|only|just|except|while|keeping|restricted|to|in order to"
                        r"|so as to|so that)\b", re.I)


# One jet pointed at: "jet 7", "entry 12", "#256", "the first jet", "the 3rd event".
_NUMBER_WORD = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty"
                r"|fifty|sixty|seventy|eighty|ninety)(?:-\w+)?")
_ONE_JET = re.compile(r"\b(?:jets?|entry|entries|events?)\s*(?:number\s*|no\.\s*)?#?\s*\d+\b|#\s*\d+\b"
                      rf"|\b(?:jet|entry|event)\s+(?:number\s+|no\.\s*)?{_NUMBER_WORD}\b"
                      r"|\b(?:first|last|\d+(?:st|nd|rd|th))\s+(?:jet|entry|event)\b", re.I)
_THAT_ONE = re.compile(r"\b(?:this|that|the same)\s+(?:one|jet)\b", re.I)  # with "similar to": a jet
_LIKE = re.compile(r"\b(?:like|similar|resembl\w*|closest|nearest|neighbou?rs?|look-?alikes?)\b", re.I)
_SHOW = re.compile(r"\b(?:show|display|draw|picture|visuali[sz]e|look at|see|view)\b", re.I)
_MAKE = re.compile(r"\bmake\b", re.I)
# An option ruled out: "a flat index is out of the question", "brute force is not an option".
_RULED_OUT = re.compile(r"\b(?:is|are)\s+(?:out of the question|not an option|off the table|not wanted)\b", re.I)
# What the user says they do themselves: "I'll make the plots myself", "we can embed it ourselves".
_DONE_MYSELF = re.compile(r"(?:\b(?:i|we)(?:'ll|'d|\s+will|\s+would|\s+can|\s+shall|'m going to|\s+am going to"
                          r"|'re going to|\s+are going to)|(?:^|[,;:]\s*)(?:will|gonna|going to|can)\s)\b[^.;!?]*"
                          r"\b(?:myself|ourselves)\b", re.I)  # a hurried note drops the "I": ", will resubmit myself"
# A sentence that tells what happened, with no ask in it: "It got a weird score in my notebook.",
# "The scan flagged it yesterday." (no comma: "it was made with seed 5, now plot it" asks)
_NARRATIVE = re.compile(r"\W*(?:(?:it\s+)?(?:looks|seems)(?:\s+like)?\s+|apparently\s+|i think\s+)?"
                        r"(?:it|they|(?:the|this|that|these|those|my|our)\s+(?:\w+\s+){0,2}?(?:jets?|scan|score"
                        r"|sample|model|tagger|run|job|plot|ones?)|this|that|these|those)"
                        r"\s+(?:also\s+|then\s+|just\s+)?(?:got|had|gave|showed|looked|came out"
                        r"|scored|flagged|ended up|turned out|seemed|finished|completed|ended|crashed|failed|is done"
                        r"|has finished)\b"
                        r"[^,;:]*", re.I)
# A jet pointed at in an earlier sentence, then referred to: "... look like it", "resembling that one".
_IT_THE_JET = re.compile(r"\b(?:look(?:s|ing)?\s+like|resembl\w*|similar\s+to)\s+(?:it|that\s+one|this\s+one"
                         r"|that\s+jet|this\s+jet|him)\b", re.I)
# What a thing is, told as context: "it's the 2M-jet generation for the corpus"
_IT_IS = re.compile(r"\W*(?:it|that|this)(?:'s|\s+is|\s+was)\s+(?:just\s+)?(?:the|a|an|my|our)\b[^,;:?]*", re.I)
# A run named by what it is, in a question about it: "is the contrastive base pretraining finished?"
_STILL_RUNNING = re.compile(r"\b(?:is|are|has)\s+(?:the|my|that|our|this)\s+[\w\s-]{0,50}?\b(?:finished|done|complete"
                            r"|completed|still running|over)\b|\bhow many of (?:its|the) [\w\s]{0,20}steps\b", re.I)
# A classifier named by what it is ("the tagger", "that linear probe"): in "how does that linear probe
# hold up on X?" the thing evaluated, not a run asked for (and see router._models)
THE_CLASSIFIER = re.compile(r"\b(?:the|my|our|that|this)\s+(?:\w+\s+)?(?:probe|tagger|classifier)\b", re.I)
# "jets the QCD simulation can't account for", "which jets does M find hardest to reconstruct?": anomalies
_UNEXPLAINED = re.compile(r"\bcan(?:'t|not|\b[^.?!]{0,40}?\bnot)\s+(?:account for|explain|describe)\b"
                          r"|\bhardest to reconstruct\b"
                          r"|\brank (?:them|the jets|these jets) by (?:the |their )?(?:masked|mpm|anomal|kNN)", re.I)
# "then score bsm_injected_v1 against them": an anomaly score relative to a reference
_SCORE_AGAINST = re.compile(r"\bscore\s+(?:the\s+)?[\w.-]+\s+(?:jets\s+)?against\b", re.I)
# What the user did, told as context: "I launched the big generation this morning but then realised ..."
_I_DID = re.compile(r"\W*(?:so\s+|well\s+|ok\s+)?(?:i|we)\s+(?:already\s+|just\s+|first\s+)?(?:launched|started|ran"
                    r"|submitted|kicked off|generated|made|trained|pretrained|fine-?tuned|built|realised|realized"
                    r"|noticed|tried|ran)\b", re.I)
# The marks of an ask in such a sentence: "..., so could you now ...", "and I'd like ..."
_ASKS = re.compile(r"\b(?:please|pls|could you|can you|would you|now|let's|go ahead|i'd like|i would like|i want"
                   r"|i need|we need|we want|you should)\b", re.I)
# Jets described, not pointed at: "jets that look like a boosted W", "resembling H to b b-bar".
_LOOK_LIKE = re.compile(r"\b(?:looks?|looking)\s+like\b|\bresembl\w*", re.I)
# "show me jets with mass above 100 GeV", "show five jets that ...": jets to find, no display of one.
_SHOW_JETS = re.compile(rf"\b(?:show|display)\s+(?:me\s+|us\s+)?(?:(?:the\s+)?(?:\d+|{_NUMBER_WORD}|a\s+few|some)\s+)?"
                        r"(?:\w+\s+)?jets\b", re.I)
# "index ttbar_hi with fm_mpm embeddings": the embeddings name what another action uses.
_EMBEDDINGS_USED = re.compile(r"\b(?:with|using|from|of|on|in|into|over)\s+(?:the\s+)?(?:[\w.-]+\s+){0,2}embeddings\b"
                              r"|[\w.-]+'s\s+embeddings\b|\bembeddings\s+(?:exist|are (?:there|done|ready|in place))\b"
                              r"|\bembeddings\s+(?:from|by|made\s+(?:with|by)|computed\s+(?:with|by))\b", re.I)
# An index named as what an action uses, not as something to build.
_INDEX_USED = re.compile(r"\b(?:using|with|in|from|via|through|on)\s+(?:the\s+|that\s+|this\s+|my\s+|our\s+|its\s+)?"
                         r"(?:same\s+)?(?:[\w.-]*[\d_][\w.-]*\s+)?(?:faiss\s+)?index\b", re.I)
# A new name given to what an action makes: "called hbb3k", "named run2_fat".
_NAMED = re.compile(r"\b(?:called|named|call it|name it)\s+[\"'`]?[\w.-]+", re.I)
# A kind of FAISS index named as such, not inside a name ("idx-run2-hnsw").
_INDEX_KIND = re.compile(r"(?<![\w-])(?:hnsw|ivf\s?flat|ivf\s?pq|ivf|product[- ]quanti[sz]\w*)\b", re.I)
# "show me their soft-drop mass": what is shown, after the verb
_SHOW_WHAT = re.compile(r"\bshow\s+(?:me\s+|us\s+)?(?:(how\s+(?:many\s+)?)(?:their|its|the)?|their|its|the)\s*(.+)",
                        re.I)
# Goals that name their tool without its word (blind11: requests that say what they want to know).
# "how does that classifier do on X?", "is my tagger any good on ...", "check how it performs on Y"
_HOW_GOOD = re.compile(r"\bhold(?:s|ing)? up\b|\bstill works?\b"
                       r"|\bhow (?:well |good )?(?:does|do|did|would|will) (?:it|they|that|this|the|my|our)\b"
                       r"[^.?!]{0,40}?\b(?:do|perform|fare|work)\b|\bhow (?:good|well)\b[^.?!]{0,30}?\b(?:is|are|does"
                       r"|do)\b|\bany good\b|\bperform(?:s|ing)? on\b", re.I)
# "teach a tiny network on X with the contrastive approach", "a backbone trained on X that predicts
# the next constituent", "my own network that learns jet structure from unlabelled data"
_TRAIN_NET = re.compile(r"\b(?:teach|train)\w*\s+(?:a|an|my|our)?\s*(?:own\s+)?(?:tiny\s+|small\s+|base\s+)?"
                        r"(?:network|net|backbone|encoder|foundation model)\b"
                        r"|\b(?:network|backbone|encoder|net|model)\s+(?:that\s+)?(?:to\s+)?(?:learns?|trained on)\b",
                        re.I)
# "can we learn something from the unlabelled run first?": a pretraining
_LEARN_UNLABELLED = re.compile(r"\blearn\w*\s+(?:something\s+|anything\s+)?from\s+(?:the\s+|our\s+|my\s+)?"
                               r"unlabell?ed\b", re.I)
# "can I see what the very first jet in X looks like?": the display of that jet
_SEE_JET = re.compile(r"\b(?:see|show(?: me)?|picture)\s+what\s+(?:the\s+)?(?:\w+\s+){0,3}?(?:jet|entry|event)\b"
                      r"[^.?!]*\blooks?\s+like\b", re.I)
# "5000 QCD jets between 1.2 and 1.4 TeV, seed 9100": jets counted out with no action word, to make
_COUNTED_JETS = re.compile(r"^[^.?!]{0,60}?\b\d[\d,.]*\s*k?\s+(?:[\w>*-]+\s+){0,3}?jets\b", re.I)
_OF_A_SAMPLE = re.compile(r"\b(?:of|in|from|among)\s+[\w-]*[_\d][\w-]*", re.I)
_UNSUPERVISED = re.compile(r"\bunlabell?ed\b|\bself-?supervised\b|\blearns?\b|\bwithout (?:any )?labels\b", re.I)
# "the pretrained net", "pretrained weights": an adjective, no pretraining asked
_PRETRAINED_THING = re.compile(r"\b(?:pre-?trained|fine-?tuned)\s+(?:\w+\s+)?(?:net|network|model|backbone|encoder"
                               r"|weights|one|transformer|features|tagger|classifier|thing)\b", re.I)
# "some way to quickly look up jets ... later", "something I can look up similar jets in": an index
_LOOKUP_LATER = re.compile(r"\b(?:(?:some\s+way|a\s+way|something|a\s+structure|a\s+tool)\s+"
                           r"(?:(?:to|i|we)\s+)?(?:can\s+)?|be\s+able\s+to\s+)(?:quickly\s+|later\s+|fast\s+)?"
                           r"(?:look\s*up|search|query|retrieve)"
                           r"|\ban?\s+(?:\S+\s+)?index\s+(?:is|would be)\s+(?:fine|ok|okay|enough|good)\b", re.I)
# "I'd like to see how tau32 is distributed in X", "see how the soft-drop mass looks": a distribution
_SEE_HOW = re.compile(r"\b(?:see|know|check|look at)\s+how\s+(?:the\s+|its\s+|their\s+)?[\w\s-]{1,30}?\s+"
                      r"(?:looks?|is distributed|are distributed|is spread|are spread|varies)\b", re.I)
# "a compact numeric summary of every jet ... for my own BDT": one vector per jet, an embedding
_PER_JET_VECTOR = re.compile(r"\b(?:summary|representation|vector|encoding|feature set)\s+(?:of|for)\s+(?:every|each"
                             r"|all the)\s+jets?\b|\bper[- ]jet\s+(?:vectors?|features|representations?)\b", re.I)
# "sort the whole sample into 'W boson' and 'QCD jet'", "without training anything": zero-shot labels
_SORT_INTO = re.compile(r"\bsort\w*\b[^.;!?]*?\binto\b", re.I)
_NO_TRAINING = re.compile(r"\bwithout (?:any )?training\b", re.I)
# "a top-vs-QCD tagger trained from random weights", "training a classifier": a finetune
_TRAINED_TAGGER = re.compile(r"\b(?:tagger|classifier)s?\s+(?:trained|train)\b"
                             r"|\btrain(?:ing)?\s+(?:a|an|the|my)?\s*(?:\S+\s+){0,2}?(?:tagger|classifier)\b", re.I)
# Verbs that go with many actions ("find the weirdest jets", "show me jet 3"): they propose a text
# search only when no more specific action word is there.
GENERIC_TOOLS = ("search_text",)


def proposed_tools(text: str) -> tuple[str, ...]:
    """The tools an action's words propose (ACTION_WORDS), made specific: a jet that is pointed at
    ("like #256", "show me the first jet") means a similar-jet search or the jet's display; "look
    like" without one ("jets that look like a boosted W") describes jets for a text search; a
    generic verb gives way to a specific action word ("find the weirdest jets": a scan)."""
    if _NARRATIVE.fullmatch(text.strip()) or _IT_IS.fullmatch(text.strip()) \
            or (_I_DID.match(text) and not _ASKS.search(text)):
        return ()
    tools = list(tools_of(text))
    plain = tools_of(_PRETRAINED_THING.sub(" ", text))
    # "could the pretrained net tell W from Z ...", "is the fine-tuned tagger any good": no training asked
    tools = [t for t in tools if t not in ("pretrain", "finetune") or t in plain]
    if _HOW_GOOD.search(text) and "evaluate" not in tools:
        tools.append("evaluate")
    if _HOW_GOOD.search(text) and THE_CLASSIFIER.search(text):
        tools = [t for t in tools if t != "finetune"]  # "how does that linear probe hold up on X?"
    if _STILL_RUNNING.search(text):
        tools = ["job_status"]  # "is the contrastive base pretraining from this morning finished?"
    if _UNEXPLAINED.search(text):
        # ("the QCD simulation can't explain": the simulation is the reference, no generation asked)
        tools = [t for t in tools if t not in ("evaluate", "generate_dataset", *GENERIC_TOOLS)] + ["anomaly_scan"]
    if _SCORE_AGAINST.search(text):
        tools = [t for t in tools if t != "evaluate"] + ["anomaly_scan"]
    if ((_TRAIN_NET.search(text) and (find_terms(text).get("objective") or _UNSUPERVISED.search(text)))
            or _LEARN_UNLABELLED.search(text)) and "finetune" not in tools:
        tools = [t for t in tools if t != "generate_dataset"] + ["pretrain"]
    seen = _SEE_HOW.search(text)
    if seen and "observable" in find_terms(seen.group(0)) and "plot_observable" not in tools:
        tools = [t for t in tools if t not in GENERIC_TOOLS] + ["plot_observable"]
    if _PER_JET_VECTOR.search(text):
        tools = [t for t in tools if t != "describe_dataset"] + ["embed"]
    if _LOOKUP_LATER.search(text):
        tools = [t for t in tools if t not in ("search_similar", "search_text")] + ["build_index"]
    if _TRAINED_TAGGER.search(text) and "finetune" not in tools:
        tools = [t for t in tools if t != "generate_dataset"] + ["finetune"]
    if (_SORT_INTO.search(text) or _NO_TRAINING.search(text)) and "zero_shot_classify" not in tools:
        tools.append("zero_shot_classify")
    for not_asked in (_DONE_MYSELF.search(text), _RULED_OUT.search(text)):
        if not_asked is not None:  # "I'll make the plots myself", "a flat index is out of the question"
            after = tools_of(text[not_asked.end() :])
            tools = [t for t in tools if t not in tools_of(text[: not_asked.end()]) or t in after]
    if "scratch" in find_terms(text).get("mode", []) and "finetune" not in tools:
        tools.append("finetune")  # "a tiny tagger from random init": a classifier trained from scratch
    for owner in ("cancel_job", "job_status"):  # "abort that pretraining run": the run is what is cancelled
        if owner in tools:
            tools = [owner]
    if _INDEX_USED.search(text) and "build_index" in tools:
        tools.remove("build_index")  # "using index ivf_tqcd, show the jets most similar to ...": a search
    like = bool(_LIKE.search(text))
    one_jet = bool(_ONE_JET.search(text)) or (like and bool(_THAT_ONE.search(text)))
    if one_jet and like and "search_similar" not in tools:
        tools.append("search_similar")
    if one_jet and _SHOW.search(text) and "search_similar" not in tools and "show_jet" not in tools:
        tools.append("show_jet")
    if (one_jet or _THAT_ONE.search(text)) and "show_jet" in tools and "plot_observable" in tools:
        tools.remove("plot_observable")  # "draw jet number 42": the display of that jet, not a histogram
    if "embed" in tools and _EMBEDDINGS_USED.search(text) \
            and "embed" not in tools_of(_EMBEDDINGS_USED.sub(" ", text)):
        tools.remove("embed")  # "..., with embeddings from clr-small": what another action uses
    if "generate_dataset" in tools and len(tools) > 1 and "generate_dataset" not in tools_of(_MAKE.sub(" ", text)):
        tools.remove("generate_dataset")  # "make it an IVF-PQ one", "make a plot": "make" yields to the tool
    if "search_similar" in tools and not one_jet and set(tools) <= {"search_similar", "search_text"} \
            and _INDEX_KIND.search(text):
        tools = ["build_index"]  # "nearest-neighbour search on mix10 using an HNSW graph": build that index
    if "search_similar" in tools and not one_jet and ("search_text" in tools or _LOOK_LIKE.search(text)):
        tools.remove("search_similar")  # "jets that look like H to b b-bar": a description to search for
        tools += [] if "search_text" in tools else ["search_text"]
    if "show_jet" in tools and not one_jet and _SHOW_JETS.search(text):
        tools.remove("show_jet")  # "show me jets with mass above 100 GeV": jets to find, no display of one
        tools += [] if "search_text" in tools else ["search_text"]
    if _SEE_JET.search(text):
        tools = ["show_jet"]  # "can I see what the very first jet in X looks like?"
    shown = _SHOW_WHAT.search(text)
    quantity = shown is not None and "observable" in find_terms(
        (shown.group(1) or "") + " ".join(shown.group(2).split()[:4]))
    if quantity and not one_jet and set(tools) <= {*GENERIC_TOOLS}:
        tools = ["plot_observable"]  # "then show me their soft-drop mass": a distribution to look at
    if any(t not in GENERIC_TOOLS for t in tools):
        tools = [t for t in tools if t not in GENERIC_TOOLS]
    return tuple(t for t in ACTION_WORDS if t in tools)


@dataclass(frozen=True)
class Clause:
    start: int  # character span in the request
    end: int
    text: str
    tools: tuple[str, ...]  # the tools its action words may mean, in ACTION_WORDS order
    goal: bool = False  # named by a goal, not by a tool's word ("is my tagger any good on X?"): see goal_stated


@lru_cache(maxsize=1)
def _action_pattern() -> re.Pattern[str]:
    words = {*STARTING_WORDS, *(w for ws in ACTION_WORDS.values() for w in ws)} - set(NAMING_WORDS)
    words = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")", re.I)


# An action named to say it is not wanted: "a no-pretraining baseline", "without fine-tuning".
_NEGATED = re.compile(r"\b(?:no|without|non|not|skip(?:ping)?)(?:[\s-]+(?:any|the|a|an))?[\s-]+"
                      rf"(?:pre-?train|fine-?tun|embed|{'|'.join(ACTION_WORDS)})\w*", re.I)


def tools_of(text: str, negated: bool = False) -> tuple[str, ...]:
    """The tools whose action words ``text`` holds (not those it negates); with ``negated``, the
    tools it names only to say they are not wanted ("a baseline with no pretrained weights")."""
    low = text.lower()
    named = _named_tools(_NEGATED.sub(" ", low))
    if not negated:
        return named
    refused = " ".join(m.group(0) for m in _NEGATED.finditer(low))
    # a tool refused by its own name ("no search_similar") stays refused whatever else names it
    by_name = {t for t in ACTION_WORDS if re.search(rf"(?<![\w-]){t}(?![\w-])", refused)}
    return tuple(t for t in _named_tools(refused) if t not in named or t in by_name)


def _named_tools(low: str) -> tuple[str, ...]:
    """The tools ``low`` names by an action word or by the tool's own name ("run search_text")."""
    return tuple(t for t, words in ACTION_WORDS.items() if any(re.search(r"\b" + re.escape(w), low) for w in words)
                 or re.search(rf"(?<![\w-]){t}(?![\w-])", low))


def _pieces(request: str) -> list[tuple[int, int]]:
    """Spans cut at the separators, and at an "and" whose next word starts an action."""
    cuts = [(m.start(), m.end()) for m in _SEPARATOR.finditer(request)]
    for m in re.finditer(r"\s+(?:and|\+)\s+", request, re.I):  # "describe X + mass hist": typed shorthand
        if any(a <= m.start() < b for a, b in cuts):
            continue
        # "... a 3000-jet H->bb sample called hbb3k and a QCD sample called qcd3k": two things made
        lead = _ASKING.match(request, m.end())  # "... and give me a summary of it"
        starts = _action_word(request, lead.end() if lead else m.end(), anchored=True)
        # "describe X and n_constituents histogram" (not "plot mass and pt histograms": one action)
        bare = _BARE_PRODUCT.match(request, m.end())
        bare = bare and "observable" in find_terms(bare.group(0)) \
            and "plot_observable" not in tools_of(_since_cut(request, cuts, m.start()))
        if starts or _PRODUCT.match(request, m.end()) or bare or (
                _NAMED.search(_since_cut(request, cuts, m.start())) and _NAMED.search(_to_cut(request, cuts, m.end()))):
            cuts.append((m.start(), m.end()))
    spans, pos = [], 0
    for a, b in sorted(cuts):
        if a > pos:
            spans.append((pos, a))
        pos = max(pos, b)
    if pos < len(request):
        spans.append((pos, len(request)))
    return spans


def _since_cut(request: str, cuts: list[tuple[int, int]], pos: int) -> str:
    return request[max([b for a, b in cuts if b <= pos], default=0) : pos]


def _to_cut(request: str, cuts: list[tuple[int, int]], pos: int) -> str:
    return request[pos : min([a for a, b in cuts if a >= pos], default=len(request))]


def action_clauses(request: str, names: Iterable[str] = ()) -> list[Clause]:
    """The request's actions in order (see the module docstring); [] when it names none. A workspace
    name among ``names`` that holds an action word ("zh-bb-scan") is read as a name, not an action."""
    masks = _masks(request, names)
    if masks:
        return [replace(c, text=_unmask(c.text, masks)) for c in _action_clauses(without_names(request, masks))]
    return _action_clauses(request)


def without_names(request: str, names: Iterable[str] | dict[str, str]) -> str:
    """``request`` with each of ``names`` that holds an action word replaced by a stand-in of its
    length: what ``tools_of`` reads to find the actions a request names."""
    masks = names if isinstance(names, dict) else _masks(request, names)
    for name, mask in masks.items():
        request = request.replace(name, mask)
    return request


def _masks(request: str, names: Iterable[str]) -> dict[str, str]:
    """A stand-in of the same length for each name in ``request`` that holds an action word."""
    out: dict[str, str] = {}
    for name in sorted(set(names), key=len, reverse=True):
        stand_in = f"n{len(out)}_".ljust(len(name), "_")
        if name in request and tools_of(name) and len(stand_in) == len(name):
            out[name] = stand_in
    return out


def _unmask(text: str, masks: dict[str, str]) -> str:
    for name, mask in masks.items():
        text = text.replace(mask, name)
    return text


def _action_clauses(request: str) -> list[Clause]:
    clauses: list[Clause] = []
    for start, end in _pieces(request):
        text = request[start:end].strip()
        tools = proposed_tools(text)
        # "import X and register it as Y": the same action again on "it" is the action before, named
        # and "..., but only to separate H->bb and H->cc": the same action qualified, not a second one
        # and "what's in wz_mix? class counts and mass quantiles": a new sentence that says more about
        # the same action, naming nothing of its own
        # and "plot the mass of tq600, one histogram per class": the action's word as a noun that says how
        # and "Our analysis needs to separate W from Z. Could you fine-tune X on Y ...": a sentence of
        # purpose that names nothing, then the action itself
        new_sentence = bool(clauses) and bool(re.search(r"[.?!]", request[clauses[-1].end : start]))
        # and "generate ..., seed 7 -- sorry, make that seed 8": a correction, not a second sample
        # and "finetune X on Y with 500 labels, full fine-tuning, 2000 steps": the action named again
        # as a noun after its setting, with nothing of its own named
        names_nothing = not re.search(r"[\w-]*[\d_]", text) and not _NAMED.search(text)
        word = _action_word(text)
        same = bool(clauses) and tools == clauses[-1].tools and bool(
            re.search(r"\b(?:it|its|them|ones)\b", text, re.I) or _QUALIFIER.match(text) or _HOW.match(text)
            or _CORRECTING.search(text) or (new_sentence and names_nothing)
            or (names_nothing and word is not None and word.start() > 0 and not _ASKING.match(text)
                and not re.match(r"(?:please|and|also|now|next|finally)\b", text, re.I)))
        if not same and new_sentence and tools == clauses[-1].tools \
                and not re.search(r"[\w-]*[\d_]", clauses[-1].text) and re.search(r"[\w-]*[\d_]", text):
            clauses.pop()  # the purpose is said again by the action: one clause, the action's
        # (a piece of its own: at the start or after a sentence's end or a colon, not "000 W jets" of "10,000")
        own_piece = start == 0 or bool(re.search(r"[.:;!?]\s*$", request[:start]))
        # ("Could you produce a fresh ttbar-like sample? 20000 top jets plus QCD ...": the same generation)
        own_piece = own_piece and not (clauses and "generate_dataset" in clauses[-1].tools)
        counted = not tools and own_piece and bool(_COUNTED_JETS.search(text) and find_terms(text).get("class")
                                                   and not _OF_A_SAMPLE.search(text))
        if counted:
            tools = ("generate_dataset",)  # "we need a QCD-only reference: 5000 QCD jets ..., seed 9100"
        pointed_back = "search_text" in tools and bool(_LOOK_LIKE.search(text) and _IT_THE_JET.search(text)
                                                         and _ONE_JET.search(request[:start]))
        if pointed_back:
            tools = ("search_similar",)  # "Jet 512 is a nice H->4q candidate. Others that look like it?"
        plain = _NEGATED.sub(" ", text)
        if tools and (_starts_an_action(plain) or _starts_an_action(_LEAD_IN.sub("", plain))
                      or _starts_an_action(_ASKING.sub("", plain, count=1))  # "then give me the 15 jets most similar"
                      or goal_stated(plain) or pointed_back or counted) and not same:
            clauses.append(Clause(start, end, text, tools, goal_stated(plain) or pointed_back))
        elif clauses and not tools and _NAMED.search(text) and _NAMED.search(clauses[-1].text):
            # "..., and a 3000-jet QCD sample called qcd3k": the action before again, on a new target
            clauses.append(Clause(start, end, text, clauses[-1].tools))
        elif clauses:  # "..., 500 steps": more about the action before
            last = clauses[-1]
            clauses[-1] = Clause(last.start, end, request[last.start : end].strip(), last.tools, last.goal)
    no_index = _NO_INDEX_YET.search(request)
    if no_index and _ONE_JET.search(request[: no_index.start()]) and _LIKE.search(request[: no_index.start()]):
        # "I want look-alikes of jet 88 in X. There's no index for it yet, so make one first and then give
        # me the 5 closest": the index first (with what the words after the statement say of it), then
        # the search the request is for, read with the jet it points at
        searches = [c for c in clauses if c.start >= no_index.start() and set(c.tools) & {"search_similar",
                                                                                          "search_text"}]
        if searches:
            last = searches[-1]
            purpose = request[: no_index.start()].strip()
            clauses = [Clause(no_index.start(), last.start, request[no_index.start() : last.start].strip(),
                              ("build_index",)),
                       # its span takes in the purpose, so the jet number there is this search's
                       Clause(0, last.end, f"{purpose} {last.text}", ("search_similar",), last.goal)]
    return clauses


# "there's no index for it yet", "X has no index": the index is made before the search the request wants
_NO_INDEX_YET = re.compile(r"(?:\b(?:but\s+|and\s+|as\s+)?there(?:'s|\s+is)\s+)?\bno (?:faiss |search )?index\b[^.;]*?"
                           r"\byet\b|\bhas no (?:faiss )?index\b", re.I)


def _action_word(text: str, pos: int = 0, anchored: bool = False) -> re.Match[str] | None:
    """The first action word of ``text`` from ``pos`` (at ``pos`` itself when ``anchored``) that is a
    word of its own, not part of a name ("name it probe-1k", "the index_v2 dataset")."""
    pattern = _action_pattern()
    m = pattern.match(text, pos) if anchored else pattern.search(text, pos)
    while m is not None:
        token = re.match(r"[\w\-]*", text[m.start():]).group(0)
        if not re.search(r"[\d_]", token):
            return m
        m = None if anchored else pattern.search(text, m.end())
    return None


def goal_stated(text: str) -> bool:
    """A goal that names its tool without its word, anywhere in the piece ("Is my classifier any good on
    ...?", "I'd like some way to quickly look up ...", "a backbone trained on X that predicts ...")."""
    return any(p.search(text) for p in (_HOW_GOOD, _TRAIN_NET, _LOOKUP_LATER, _SORT_INTO, _TRAINED_TAGGER,
                                        _PER_JET_VECTOR, _SEE_HOW, _LEARN_UNLABELLED, _SEE_JET, _STILL_RUNNING,
                                        _SCORE_AGAINST, _UNEXPLAINED)) \
        or bool(re.search(r"\bfeature vectors?\b", text, re.I))


def _starts_an_action(text: str) -> bool:
    """An action word among the first few words ("please embed them", "and then build an index"),
    not deep inside a noun phrase ("jets with the largest anomaly score")."""
    m = _action_word(text)
    return m is not None and len(text[: m.start()].split()) <= 4
