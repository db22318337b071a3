"""bench_finetune's labels: two pretrained backbones in one study must not share names or runs."""

from argparse import Namespace

from benchmarks.bench_finetune import METHODS, method_label


def test_a_tagged_backbone_labels_only_the_pretrained_methods():
    args = Namespace(encoder=[], tag="no-hcc")
    labels = {m: method_label(m, args) for m in METHODS}
    assert labels["full"] == "full[no-hcc]" and labels["linear_probe"] == "linear_probe[no-hcc]"
    assert labels["weaver_part"] == "weaver_part" and labels["gbdt"] == "gbdt" and labels["scratch"] == "scratch"
    assert method_label("full", Namespace(encoder=[], tag="")) == "full"


def test_encoder_overrides_still_name_the_scratch_arm():
    assert method_label("scratch", Namespace(encoder=["pair_norm=true"], tag="x")) == "scratch[pair_norm=true]"
