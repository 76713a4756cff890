using WeakSeg.Segmentation;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

/// <summary>One declaration ([ResultNeutral]) of the fields that never change a run's numbers, read by the trainer's resume check,
/// the segmentation resume check and the pipeline's stage ledger.</summary>
public class ResultNeutralTests
{
    [Fact]
    public void The_trainer_declares_the_fields_the_stage_ledger_has_always_dropped()
    {
        // the list the pipeline's stage ledger dropped by hand before the declaration: old stage records still match
        Assert.Equal(["checkpoint_every", "keep_last_checkpoints", "log_every", "collect_garbage_every", "device", "threads"], TrainerOptions.ResultNeutralKeys);
    }

    [Fact]
    public void The_resume_check_names_every_other_field_and_only_those()
    {
        var d = new TrainerOptions();
        var changed = d with
        {
            Steps = 1, BatchSize = 1, BaseLr = 1, MinLr = 0.5, WarmupStartLr = 0.5, WarmupSteps = 1, WeightDecay = 1, NoWeightDecayNames = ["x"],
            DecayAllParameters = true, Beta1 = 0.5, Beta2 = 0.5, Eps = 1, Optimizer = OptimizerKind.Sgd, Momentum = 0.5, Schedule = ScheduleKind.Poly,
            PolyPower = 2, GradClipNorm = 1, Seed = 1,
            CheckpointEvery = 1, KeepLastCheckpoints = 1, LogEvery = 1, CollectGarbageEvery = 0, Device = "cuda", Threads = 1,
        };
        var diffs = d.ResultAffectingDifferences(changed).ToList();
        Assert.Equal(["Steps", "BatchSize", "BaseLr", "MinLr", "WarmupStartLr", "WarmupSteps", "WeightDecay", "NoWeightDecayNames", "DecayAllParameters",
                      "Beta1", "Beta2", "Eps", "Optimizer", "Momentum", "Schedule", "PolyPower", "GradClipNorm", "Seed"], diffs.Select(x => x.Field));
        Assert.Equal(("pos_embed,cls_token,dist_token", "x"), diffs.Single(x => x.Field == "NoWeightDecayNames") is var n ? (n.Checkpoint, n.Now) : default);
        Assert.Equal(("none", "1"), diffs.Single(x => x.Field == "GradClipNorm") is var g ? (g.Checkpoint, g.Now) : default);
        Assert.Equal(("6.25E-05", "1"), diffs.Single(x => x.Field == "BaseLr") is var l ? (l.Checkpoint, l.Now) : default);
    }

    [Fact]
    public void The_segmentation_canonical_form_fixes_the_declared_fields_as_before()
    {
        Assert.Equal(["checkpoint_every", "log_every"], ResultNeutral.Keys(WeakSeg.IO.WeakSegJson.TypeInfo<SegmentationConfig>()));
        foreach (var config in new[] { SegmentationConfig.Cpu, SegmentationConfig.Paper, SegmentationConfig.Cpu with { Loss = SegmentationDecoderLoss.Naive, ClipStartValue = 5 } })
        {
            var canonical = config.CanonicalForTraining();
            Assert.Equal((1L, 1L), (canonical.CheckpointEvery, canonical.LogEvery));
            var byHand = config with { CheckpointEvery = 1, LogEvery = 1 };
            if (config.Loss == SegmentationDecoderLoss.Naive) Assert.Equal(1, canonical.ClipStartValue);
            else Assert.Equal(byHand.ToJson(), canonical.ToJson());
            Assert.Equal(canonical.ToJson(), (config with { CheckpointEvery = 7, LogEvery = 3 }).CanonicalForTraining().ToJson());
        }
    }
}
