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
}
