using System.Text.Json.Nodes;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>The weak pipeline never reads pixel labels unless asked: its pseudo labels do not depend on the masks, and it runs on a
/// dataset with image labels only, skipping (and naming) the metrics that need masks.</summary>
[Collection("Torch")]
public class LabelOnlyPipelineTests
{
    static WsssPipelineOptions Options(string data, string outDir) => new()
    {
        OutDirectory = outDir, DataRoot = data, CamRecipe = PipelineTestData.TinyRecipe(steps: 2),
        Localization = new LocalizationOptions { Scales = [1.0], Flip = false },
        Segmentation = SegmentationConfig.Cpu with
        {
            Backbone = new VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, Steps = 2, BatchSize = 4, WarmupSteps = 1, CheckpointEvery = 2, LogEvery = 1,
        },
        Seed = 3, Threads = 2, Workers = 1,
    };

    static Dictionary<string, byte[]> Pngs(string dir) =>
        Directory.GetFiles(dir, "*.png").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void Pipeline_runs_on_image_labels_only_and_its_pseudo_labels_do_not_depend_on_the_masks()
    {
        using var dir = TestPaths.NewTempDir();
        var withMasks = PipelineTestData.MakeData(dir.File("data"));
        var reference = WsssPipeline.Run(Options(withMasks, dir.File("ref")) with { StopAfter = PipelineEnd.Pseudo });
        Assert.Equal(0.39, reference.Threshold);                                             // MCTformer's preset value, not the sweep's best
        Assert.NotNull(reference.PseudoMeanIou);                                             // masks present: still scored
        var refJson = JsonNode.Parse(File.ReadAllText(reference.ReportPath))!;
        Assert.Equal(0.39, refJson["threshold"]!.GetValue<double>());
        Assert.Equal("preset: MCTformer's official pseudo labels: psa/infer_aff.py --bg_thr default 0.39 (xulianuwa/MCTformer); no pixel label read",
            refJson["threshold_source"]!.GetValue<string>());

        // The same dataset with image labels only (labels.txt, no SegmentationClass): no mask file exists to be opened.
        var labelsOnly = dir.File("labels-only");
        PipelineTestData.MakeData(labelsOnly);
        Directory.Delete(Path.Combine(labelsOnly, "SegmentationClass"), recursive: true);
        var report = WsssPipeline.Run(Options(labelsOnly, dir.File("out")));
        Assert.DoesNotContain(report.Stages, s => s.Name.StartsWith("cam-eval", StringComparison.Ordinal) || s.Name.StartsWith("upper-bound", StringComparison.Ordinal));
        Assert.Null(report.PseudoMeanIou);
        Assert.Null(report.ValMeanIou);
        Assert.Null(report.UpperBoundMeanIou);
        var json = JsonNode.Parse(File.ReadAllText(report.ReportPath))!;
        Assert.Null(json["cam_miou"]);
        Assert.True(json["complete"]!.GetValue<bool>());
        var skipped = json["skipped_metrics"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(2, skipped.Count);
        Assert.StartsWith("cam_miou, pseudo_miou and upper_bound_miou: split 'train' has images without ground-truth masks", skipped[0]);
        Assert.StartsWith("val_miou: split 'val'", skipped[1]);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(dir.File("out"), "seg", "class-to-patch-gradclip", "val-pred"), "*.png").Length);

        // Identical pseudo labels with and without the masks on disk: they never entered the labels.
        var a = Pngs(Path.Combine(dir.File("ref"), "pseudo-class-to-patch"));
        var b = Pngs(Path.Combine(dir.File("out"), "pseudo-class-to-patch"));
        Assert.Equal(8, a.Count);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, bytes) in a) Assert.True(bytes.SequenceEqual(b[name]), $"{name} differs");

        // The oracle threshold is opt-in, marked in the report, and needs masks.
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(Options(labelsOnly, dir.File("oracle")) with { OracleThreshold = true }));
        Assert.Contains("--oracle-threshold needs a ground-truth mask for every image of split 'train' (8 have none)", e.Message);
        var oracle = WsssPipeline.Run(Options(withMasks, dir.File("ref")) with { StopAfter = PipelineEnd.Pseudo, OracleThreshold = true, OutDirectory = dir.File("oracle2") });
        Assert.StartsWith("oracle", JsonNode.Parse(File.ReadAllText(oracle.ReportPath))!["threshold_source"]!.GetValue<string>());
    }
}
