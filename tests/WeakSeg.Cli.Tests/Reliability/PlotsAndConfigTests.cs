using System.Text.Json.Nodes;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>Commands draw the plots of the data they produce; a --config value gets the same treatment as the flag.</summary>
[Collection("Torch")]
public class PlotsAndConfigTests
{
    static bool IsPng(string path) => File.Exists(path) && File.ReadAllBytes(path).AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });

    [Fact]
    public void Steps_from_config_shorter_than_the_warmup_shorten_it_and_train_and_eval_cam_write_their_plots()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var overlay = PipelineTestData.TinyOverlay(steps: 3);
        overlay["trainer"]!.AsObject().Remove("warmup_steps");                             // the preset's warm-up (longer than 3 steps) stays
        var config = dir.File("s3.json");
        File.WriteAllText(config, overlay.ToJsonString());
        var run = dir.File("run");
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("steps from --config 3 is shorter than the preset's warm-up; warm-up set to 0 steps", train.Out);
        Assert.Equal(0, JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!["trainer"]!["warmup_steps"]!.GetValue<long>());
        Assert.True(IsPng(Path.Combine(run, "loss.png")));

        // A warm-up chosen in the config is kept, so the invalid pair is still an error.
        overlay["trainer"]!["warmup_steps"] = 5;
        File.WriteAllText(config, overlay.ToJsonString());
        var chosen = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", dir.File("run2"), "--config", config);
        Assert.Equal(1, chosen.Code);
        Assert.Contains("WarmupSteps must be in [0, Steps] (got 5)", chosen.Err);

        var cams = dir.File("cams");
        Assert.Equal(0, CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "class-to-patch").Code);
        var json = dir.File("sweep.json");
        var sweep = CliRunner.Run("eval-cam", "--cams", cams, "--data", data, "--json", json);
        Assert.True(sweep.Code == 0, sweep.Err);
        Assert.True(IsPng(dir.File("sweep.png")));
    }
}
