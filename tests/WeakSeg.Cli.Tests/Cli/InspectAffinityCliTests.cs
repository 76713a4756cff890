using System.Text.Json.Nodes;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Cli;

/// <summary>`weakseg inspect-affinity` on a tiny trained run: figures in range, JSON written, bad input one line.</summary>
[Collection("Torch")]
public class InspectAffinityCliTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    [Fact]
    public void Measures_a_trained_run_and_refuses_a_dataset_without_masks_in_one_line()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"), train: 6);
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var run = dir.File("run");
        var train = Cli("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--threads", "2");
        Assert.True(train.Code == 0, train.Err);

        var json = dir.File("affinity.json");
        var inspect = Cli("inspect-affinity", "--run", run, "--images", "4", "--json", json, "--threads", "2");
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Contains("background patch → background", inspect.Out);
        var figures = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(4, figures["images"]!.GetValue<int>());
        Assert.True(figures["reads_masks"]!.GetValue<bool>());
        Assert.InRange(figures["patches"]!.GetValue<long>(), 1, 4 * 16);              // 32 px, patch 8: 16 patches per image
        Assert.Equal(1.0 / 16, figures["self_chance"]!.GetValue<double>(), 12);
        foreach (var key in new[] { "patch_share", "self_mass", "effective_support", "background_same_class", "neighbourhood_mass" })
            Assert.InRange(figures[key]!.GetValue<double>(), 0.0, 1.0 + 1e-9);
        Assert.InRange(figures["effective_support"]!.GetValue<double>(), 1.0 / 16 - 1e-9, 1.0 + 1e-9);

        File.Delete(Path.Combine(data, "SegmentationClass", File.ReadAllLines(Path.Combine(data, "ImageSets", "Segmentation", "train.txt"))[0] + ".png"));
        var noMask = Cli("inspect-affinity", "--run", run, "--images", "4", "--threads", "2");
        Assert.NotEqual(0, noMask.Code);
        var line = Assert.Single(noMask.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("has no ground-truth mask", line);
    }
}
