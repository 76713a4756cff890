using System.Text.Json.Nodes;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>`demo` is weakly supervised by default: its pseudo labels come from the method's preset threshold and no mask file is
/// opened before they are written; the masks serve only the metrics that come after.</summary>
[Collection("Torch")]
public class WeakDemoTests
{
    /// <summary>A tiny demo: 8 + 2 images of 32 px, 2 steps, scale 1 without flip.</summary>
    internal static DemoOptions Tiny(string outDir) => new()
    {
        OutDirectory = outDir,
        Data = new SyntheticDatasetConfig { TrainImages = 8, ValImages = 2, ImageSize = 32, NumClasses = PipelineTestData.Classes, Supersampling = 1, Threads = 2 },
        Steps = 2, BatchSize = 4, Threads = 2, Workers = 1, Overlays = 1,
        Localization = DemoPipeline.DefaultLocalization with { Scales = [1.0], Flip = false },
    };

    static string Message(Exception e) => e is AggregateException a ? a.Flatten().InnerExceptions[0].Message : e.Message;

    [Fact]
    public void Demo_writes_its_pseudo_labels_without_any_mask_on_disk_and_scores_them_afterwards()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("demo");
        var data = DemoPipeline.DataDirectory(outDir);
        var masks = Path.Combine(data, "SegmentationClass");
        var hidden = masks + ".hidden";
        var pseudoDir = Path.Combine(outDir, "pseudo");
        var stages = new List<string>();
        void MasksAwayDuringTheWeakPath(string stage)
        {
            stages.Add(stage);
            if (stage == "synth") Directory.Move(masks, hidden);                 // from here on no mask file exists to be opened
            if (stage == "pseudo")
            {
                Assert.Equal(8, Directory.GetFiles(pseudoDir, "*.png").Length);  // the labels are made; now the metrics may read masks
                Directory.Move(hidden, masks);
            }
        }
        var result = DemoPipeline.Run(Tiny(outDir), stageCompleted: MasksAwayDuringTheWeakPath);
        Assert.Equal(["synth", "train", "cam", "pseudo", "sweep", "eval", "overlays"], stages);

        // The threshold is MCTformer+'s preset value, and metrics.json says where it came from.
        const string source = "preset: no single value from the method's authors (MCTformer+'s official evaluation sweeps the background threshold on the masks); the common CAM background threshold 0.5; no pixel label read";
        Assert.Equal(0.5, result.Threshold);
        Assert.Equal(source, result.ThresholdSource);
        var metrics = JsonNode.Parse(File.ReadAllText(result.MetricsPath))!;
        Assert.Equal(0.5, metrics["threshold"]!.GetValue<double>());
        Assert.Equal(source, metrics["threshold_source"]!.GetValue<string>());
        Assert.Equal(["cam_miou", "cam_best_threshold", "miou_by_threshold", "per_class_iou", "pseudo_miou"],
            metrics["metrics_reading_masks"]!.AsArray().Select(n => n!.GetValue<string>()));

        // The metrics, computed independently from the maps: pseudo_miou is the mIoU at 0.5, cam_miou the sweep's best.
        var cams = DemoPipeline.CamDirectory(outDir, BuiltInMethods.DemoMethod, LocalizationMapKind.Fused);
        Assert.Equal(CamThresholdSweep.Evaluate(cams, data, "train", new CamSweepOptions { Thresholds = [0.5] }).BestMeanIou, result.PseudoMeanIou!.Value, 6);
        var sweep = CamThresholdSweep.Evaluate(cams, data, "train");
        Assert.Equal(sweep.BestMeanIou, result.CamMeanIou);
        Assert.Equal(sweep.BestThreshold, metrics["cam_best_threshold"]!.GetValue<double>());
        Assert.Equal(sweep.BestMeanIou, metrics["cam_miou"]!.GetValue<double>());

        // Control: the opt-in oracle threshold does read the masks before its labels, and the same instrument catches it. (A new folder:
        // the pseudo labels' settings differ, and the stage ledger refuses other settings in the same folder.)
        var oracleDir = dir.File("oracle");
        var oracleMasks = Path.Combine(DemoPipeline.DataDirectory(oracleDir), "SegmentationClass");
        void MasksAwayAfterSynth(string stage) { if (stage == "synth") Directory.Move(oracleMasks, oracleMasks + ".hidden"); }
        var oracle = Record.Exception(() => DemoPipeline.Run(Tiny(oracleDir) with { OracleThreshold = true }, stageCompleted: MasksAwayAfterSynth));
        Assert.NotNull(oracle);
        Assert.Contains("ground-truth mask not found", Message(oracle));
        Directory.Move(oracleMasks + ".hidden", oracleMasks);
        var withOracle = DemoPipeline.Run(Tiny(oracleDir) with { OracleThreshold = true });
        Assert.Equal(sweep.BestThreshold, withOracle.Threshold);
        Assert.StartsWith("oracle: ", JsonNode.Parse(File.ReadAllText(withOracle.MetricsPath))!["threshold_source"]!.GetValue<string>());
        Assert.Equal(sweep.BestMeanIou, withOracle.PseudoMeanIou!.Value, 6);                  // at the best threshold the labels score the best mIoU
    }
}
