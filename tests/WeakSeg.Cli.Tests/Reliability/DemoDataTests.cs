using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Visualization;

namespace WeakSeg.Tests.Reliability;

/// <summary>`demo --data DIR` runs on a user's VOC-layout folder: with masks it is scored as on the built-in data; with image labels only
/// (labels.txt, no SegmentationClass) it makes the pseudo labels and skips, and lists, the metrics that read masks; a bad folder is one
/// error line.</summary>
[Collection("Torch")]
public class DemoDataTests
{
    const string SkippedLine = "cam_miou, cam_best_threshold, miou_by_threshold, per_class_iou and pseudo_miou: split 'train' has images without ground-truth masks";

    static DemoOptions Tiny(string outDir, string data) => new()
    {
        OutDirectory = outDir, DataRoot = data,
        Steps = 2, BatchSize = 4, Threads = 2, Workers = 1, Overlays = 2,
        Localization = DemoPipeline.DefaultLocalization with { Scales = [1.0], Flip = false },
    };

    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    static string LabelsOnly(string root)
    {
        PipelineTestData.MakeData(root);
        Directory.Delete(Path.Combine(root, "SegmentationClass"), recursive: true);     // image labels stay in labels.txt
        return root;
    }

    static Dictionary<string, byte[]> Pngs(string dir) => Directory.GetFiles(dir, "*.png").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void Demo_on_a_label_only_folder_writes_the_same_pseudo_labels_and_lists_the_skipped_metrics()
    {
        using var dir = TestPaths.NewTempDir();
        var withMasks = PipelineTestData.MakeData(dir.File("data"));
        var labelsOnly = LabelsOnly(dir.File("labels-only"));

        // With masks: the given folder is used (no built-in data generated) and scored as before.
        var reference = DemoPipeline.Run(Tiny(dir.File("ref"), withMasks));
        Assert.False(Directory.Exists(DemoPipeline.DataDirectory(dir.File("ref"))));
        Assert.Empty(reference.SkippedMetrics);
        var refCams = DemoPipeline.CamDirectory(dir.File("ref"), BuiltInMethods.DemoMethod, LocalizationMapKind.Fused);
        var sweep = CamThresholdSweep.Evaluate(refCams, withMasks, "train");
        Assert.Equal(sweep.BestMeanIou, reference.CamMeanIou);
        Assert.Equal(CamThresholdSweep.Evaluate(refCams, withMasks, "train", new CamSweepOptions { Thresholds = [0.5] }).BestMeanIou,
            reference.PseudoMeanIou!.Value, 6);
        var refJson = JsonNode.Parse(File.ReadAllText(reference.MetricsPath))!;
        Assert.Equal(Path.GetFullPath(withMasks), refJson["data"]!.GetValue<string>());
        Assert.Equal(sweep.BestMeanIou, refJson["cam_miou"]!.GetValue<double>());
        Assert.Empty(refJson["skipped_metrics"]!.AsArray());

        // Image labels only: train, maps, pseudo labels at the preset threshold; no sweep, no evaluation.
        var outDir = dir.File("out");
        var stages = new List<string>();
        var result = DemoPipeline.Run(Tiny(outDir, labelsOnly), stageCompleted: stages.Add);
        Assert.Equal(["train", "cam", "pseudo", "overlays"], stages);
        Assert.Null(result.CamMeanIou);
        Assert.Null(result.PseudoMeanIou);
        Assert.Null(result.Sweep);
        Assert.Equal(0.5, result.Threshold);                                                 // MCTformer+'s preset value
        var skipped = Assert.Single(result.SkippedMetrics);
        Assert.StartsWith(SkippedLine, skipped);
        Assert.False(File.Exists(Path.Combine(outDir, "eval-cam.json")));
        Assert.False(File.Exists(Path.Combine(outDir, "eval-pseudo.json")));

        var json = JsonNode.Parse(File.ReadAllText(result.MetricsPath))!;
        Assert.Equal(skipped, Assert.Single(json["skipped_metrics"]!.AsArray())!.GetValue<string>());
        foreach (var key in new[] { "cam_miou", "cam_best_threshold", "pseudo_miou", "per_class_iou", "miou_by_threshold" })
            Assert.True(json.AsObject().ContainsKey(key) && json[key] is null, key);
        Assert.Equal(8, json["num_images"]!.GetValue<int>());
        Assert.Equal(0.5, json["threshold"]!.GetValue<double>());
        Assert.Equal(Path.GetFullPath(labelsOnly), json["data"]!.GetValue<string>());

        // The pseudo labels are byte for byte those of the folder with masks: the masks never entered them.
        var a = Pngs(DemoPipeline.PseudoDirectory(dir.File("ref")));
        var b = Pngs(result.PseudoDirectory);
        Assert.Equal(8, a.Count);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, bytes) in a) Assert.True(bytes.SequenceEqual(b[name]), $"{name} differs");

        // Overlays without the ground-truth tile: exactly the panel of image, maps and pseudo label.
        var dataset = VocDataset.Open(labelsOnly, "train");
        var cams = DemoPipeline.CamDirectory(outDir, BuiltInMethods.DemoMethod, LocalizationMapKind.Fused);
        for (int i = 0; i < 2; i++)
        {
            var name = dataset.Samples[i].Name;
            var expected = OverlayRenderer.RenderPanel(dataset.LoadImage(i), CamMapFile.Read(cams, name), dataset.ClassNames.All,
                LabelPng.Read(Path.Combine(result.PseudoDirectory, name + ".png")), null);
            var written = ImageCodec.Load(Path.Combine(outDir, "overlays", name + ".png"));
            Assert.Equal((expected.Width, expected.Height), (written.Width, written.Height));
            Assert.Equal(expected.Pixels, written.Pixels);
        }

        // The report says why the metrics are missing and where the data came from.
        var html = File.ReadAllText(Path.Combine(outDir, RunReport.FileName));
        Assert.Contains("skipped: split &#39;train&#39; has images without ground-truth masks", html);
        Assert.Contains("not needed: the dataset was given (--data)", html);
        Assert.Contains("none is ranked by pseudo-label mIoU", html);
        var run = RunFolder.Open(outDir);
        Assert.Equal(Path.GetFullPath(labelsOnly), run.DataRoot);
        Assert.All(run.Metrics.Where(m => m.Key is "cam_miou" or "pseudo_miou"), m => Assert.StartsWith("skipped: split 'train'", m.Missing));
        Assert.Equal(["done", "done", "done", "done"], run.Stages.Where(s => s.Name is "train" or "cam" or "pseudo" or "overlays").Select(s => s.Status));

        // A demo folder trained on one dataset is not reused for another.
        var e = Assert.Throws<WeakSegException>(() => DemoPipeline.Run(Tiny(dir.File("ref"), labelsOnly)));
        Assert.Contains(Path.Combine(Path.GetFullPath(dir.File("ref")), "stages", "cam-train.json"), e.Message);
        Assert.Contains("(data.root)", e.Message);
    }

    [Fact]
    public void Demo_data_on_the_command_line_reports_cam_miou_with_masks_and_the_skipped_metrics_without()
    {
        using var dir = TestPaths.NewTempDir();
        var withMasks = PipelineTestData.MakeData(dir.File("data"));
        string[] tiny = ["--steps", "2", "--batch-size", "4", "--overlays", "1", "--scales", "1", "--threads", "2"];

        var scored = Cli(["demo", "--data", withMasks, "--out", dir.File("scored"), .. tiny]);
        Assert.True(scored.Code == 0, scored.Err);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("scored"), DemoPipeline.MetricsFile)))!;
        var camMiou = metrics["cam_miou"]!.GetValue<double>();
        var cams = DemoPipeline.CamDirectory(dir.File("scored"), BuiltInMethods.DemoMethod, LocalizationMapKind.Fused);
        Assert.Equal(CamThresholdSweep.Evaluate(cams, withMasks, "train").BestMeanIou, camMiou);
        Assert.Contains(FormattableString.Invariant($"CAM mIoU (best threshold) {100 * camMiou:F1} %"), scored.Out);
        Assert.DoesNotContain("skipped cam_miou", scored.Out);

        var labelsOnly = LabelsOnly(dir.File("labels-only"));
        var weak = Cli(["demo", "--data", labelsOnly, "--out", dir.File("weak"), .. tiny]);
        Assert.True(weak.Code == 0, weak.Err);
        Assert.Contains("skipped " + SkippedLine, weak.Out);
        Assert.Contains("no metric (they read the train masks)", weak.Out);
        Assert.Contains($"pseudo labels at threshold 0.50 (preset: ", weak.Out);
        Assert.Equal(8, Directory.GetFiles(DemoPipeline.PseudoDirectory(dir.File("weak")), "*.png").Length);
        Assert.True(File.Exists(Path.Combine(dir.File("weak"), RunReport.FileName)));
    }

    [Fact]
    public void A_bad_data_folder_is_one_error_line_and_leaves_nothing_behind()
    {
        using var dir = TestPaths.NewTempDir();
        var labelsOnly = LabelsOnly(dir.File("labels-only"));
        var noSplit = dir.File("no-split");
        Directory.CreateDirectory(noSplit);
        var file = dir.File("file.txt");
        File.WriteAllText(file, "not a dataset\n");
        var cases = new (string[] Args, string Message)[]
        {
            (["--data", dir.File("missing")], $"error: {dir.File("missing")}: dataset root does not exist"),
            (["--data", file], $"error: {file}: dataset root is a file, expected a folder in VOC layout"),
            (["--data", noSplit], $"error: {Path.Combine(noSplit, "ImageSets", "Segmentation", "train.txt")}: split 'train' not found (available: none)"),
            (["--data", labelsOnly, "--oracle-threshold"], "error: --oracle-threshold needs a ground-truth mask for every image of split 'train' (8 have none)"),
            (["--data", labelsOnly, "--compare"], "error: --compare (a table of CAM mIoU) needs a ground-truth mask for every image of split 'train' (8 have none)"),
        };
        foreach (var (args, message) in cases)
        {
            var outDir = dir.File("out");
            var (code, stdout, stderr) = Cli(["demo", "--out", outDir, "--steps", "1", .. args]);
            Assert.Equal(1, code);
            Assert.Equal(message, stderr.TrimEnd('\n'));                                      // one line, no stack trace
            Assert.Equal("", stdout);
            Assert.False(Directory.Exists(outDir), $"{string.Join(' ', args)} left {outDir} behind");
        }
    }
}
