using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

public class TrainerOptionsTests
{
    [Fact]
    public void Json_round_trips_with_snake_case_keys_and_rejects_unknown_keys()
    {
        var o = new TrainerOptions { Steps = 123, BaseLr = 3e-4, GradClipNorm = 2.5, NoWeightDecayNames = ["pos_embed"], Seed = 42 };
        var json = o.ToJson();
        Assert.Contains("\"base_lr\": 0.0003", json);
        Assert.Contains("\"grad_clip_norm\": 2.5", json);
        var back = TrainerOptions.FromJson(json);
        Assert.Equal(json, back.ToJson());
        Assert.Equal(123, back.Steps);
        Assert.Equal(["pos_embed"], back.NoWeightDecayNames);
        Assert.Empty(o.ResultAffectingDifferences(back));

        var e = Assert.Throws<WeakSegException>(() => TrainerOptions.FromJson("{\"steps\": 5, \"base_lrr\": 1}", "cfg/train.json"));
        Assert.StartsWith("cfg/train.json: ", e.Message);
        Assert.Contains("base_lrr", e.Message);
    }

    [Fact]
    public void Defaults_are_valid_and_result_affecting_changes_are_listed()
    {
        var d = new TrainerOptions();
        Assert.Empty(d.Validate());
        Assert.Equal(0.05, d.WeightDecay);
        var diffs = d.ResultAffectingDifferences(d with { Seed = 1, LogEvery = 5, Threads = 2, CheckpointEvery = 7 }).ToList();
        Assert.Equal(new[] { "Seed" }, diffs.Select(x => x.Field).ToArray()); // bookkeeping options may change on resume
    }

    [Fact]
    public void A_shortened_run_keeps_at_most_a_tenth_of_its_steps_as_warm_up()
    {
        var preset = new TrainerOptions { Steps = 10_000, WarmupSteps = 825 };
        Assert.Equal((40L, 4L), (preset.WithSteps(40).Steps, preset.WithSteps(40).WarmupSteps));           // 825 → 40 / 10
        Assert.Equal((9L, 0L), (preset.WithSteps(9).Steps, preset.WithSteps(9).WarmupSteps));              // integer tenth
        Assert.Equal(825, preset.WithSteps(20_000).WarmupSteps);                                            // a longer run keeps it
        Assert.Equal(preset with { Steps = 40, WarmupSteps = 4 }, preset.WithSteps(40));                   // nothing else changes
        var seg = WeakSeg.Segmentation.SegmentationConfig.Cpu with { Steps = 500, WarmupSteps = 30 };
        Assert.Equal((25L, 2L), (seg.WithSteps(25).Steps, seg.WithSteps(25).WarmupSteps));
        Assert.Equal(30, seg.WithSteps(1000).WarmupSteps);
    }

    [Fact]
    public void A_segmenter_learning_rate_below_the_poly_floor_lowers_the_floor()
    {
        var seg = WeakSeg.Segmentation.SegmentationConfig.Cpu with { LearningRate = 1e-3, MinLearningRate = 1e-5 };
        Assert.Equal((1e-6, 1e-6), (seg.WithLearningRate(1e-6).LearningRate, seg.WithLearningRate(1e-6).MinLearningRate));
        Assert.Equal((1e-2, 1e-5), (seg.WithLearningRate(1e-2).LearningRate, seg.WithLearningRate(1e-2).MinLearningRate));
        Assert.Equal(seg with { LearningRate = 1e-2 }, seg.WithLearningRate(1e-2));
    }

    [Fact]
    public void A_warm_up_longer_than_the_run_becomes_a_tenth_of_it_and_a_shorter_one_is_kept()
    {
        var longWarmup = new TrainerOptions { Steps = 55, WarmupSteps = 825 };
        Assert.Equal(5, longWarmup.WithWarmupWithinSteps().WarmupSteps);
        Assert.Equal(55, longWarmup.WithWarmupWithinSteps().Steps);
        var fits = new TrainerOptions { Steps = 1000, WarmupSteps = 825 };
        Assert.Same(fits, fits.WithWarmupWithinSteps());
        var equal = new TrainerOptions { Steps = 825, WarmupSteps = 825 };
        Assert.Same(equal, equal.WithWarmupWithinSteps());
        var invalid = new TrainerOptions { Steps = 0, WarmupSteps = 825 };                                 // left for Validate to refuse
        Assert.Same(invalid, invalid.WithWarmupWithinSteps());
    }
}
