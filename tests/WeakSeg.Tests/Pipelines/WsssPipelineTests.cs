using System.Text.Json.Nodes;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

public class StageLedgerTests
{
    [Fact]
    public void A_stage_goes_new_unfinished_done_and_keeps_its_time_and_results()
    {
        using var dir = TestPaths.NewTempDir();
        var ledger = new StageLedger(dir.File("stages"));
        var settings = new JsonObject { ["steps"] = 5, ["inner"] = new JsonObject { ["lr"] = 0.1 } };
        Assert.Equal(StageState.New, ledger.Check("train", settings).State);

        ledger.Begin("train", settings, 2.5);
        var (state, results, seconds) = ledger.Check("train", settings);
        Assert.Equal(StageState.Unfinished, state);
        Assert.Null(results);
        Assert.Equal(2.5, seconds);

        ledger.Complete("train", settings, 7.25, new JsonObject { ["miou"] = 0.5 });
        (state, results, seconds) = ledger.Check("train", settings);
        Assert.Equal(StageState.Done, state);
        Assert.Equal(0.5, results!["miou"]!.GetValue<double>());
        Assert.Equal(7.25, seconds);
    }

    [Fact]
    public void Other_settings_are_an_error_naming_the_record_and_the_differing_keys()
    {
        using var dir = TestPaths.NewTempDir();
        var ledger = new StageLedger(dir.File("stages"));
        ledger.Complete("maps", new JsonObject { ["map"] = "refined", ["up"] = new JsonObject { ["steps"] = 5, ["seed"] = 0 } }, 1, new JsonObject());
        var e = Assert.Throws<WeakSegException>(() =>
            ledger.Check("maps", new JsonObject { ["map"] = "refined", ["up"] = new JsonObject { ["steps"] = 6, ["seed"] = 0 } }));
        Assert.Contains(ledger.PathOf("maps"), e.Message);
        Assert.Contains("(up.steps)", e.Message);

        File.WriteAllText(ledger.PathOf("broken"), "{ not json");
        var bad = Assert.Throws<WeakSegException>(() => ledger.Check("broken", new JsonObject()));
        Assert.Contains(ledger.PathOf("broken"), bad.Message);
    }
}

[Collection("Torch")]
public class WsssPipelineTests
{
    /// <summary>Passes progress through, and cancels once a stage whose title starts with <paramref name="title"/> reports step <paramref name="step"/>.</summary>
    internal sealed class CancelAtStep(CancellationTokenSource cancel, string title, long step) : IStageReporter
    {
        public T Run<T>(string stageTitle, Func<IProgress<ProgressUpdate>?, T> work) =>
            work(stageTitle.StartsWith(title, StringComparison.Ordinal) ? new Watch(cancel, step) : null);
        public void Log(string line) { }

        sealed class Watch(CancellationTokenSource cancel, long step) : IProgress<ProgressUpdate>
        {
            public void Report(ProgressUpdate value) { if (value.Done >= step) cancel.Cancel(); }
        }
    }

    static readonly string[] AllStages =
        ["cam-train", "maps-class-to-patch", "cam-eval-class-to-patch", "pseudo-class-to-patch", "seg-class-to-patch-gradclip-train",
         "seg-class-to-patch-gradclip-val", "upper-bound-train", "upper-bound-val"];

    static void AssertSameMetrics(WsssPipelineReport expected, WsssPipelineReport actual)
    {
        Assert.Equal(expected.CamMeanIou, actual.CamMeanIou);
        Assert.Equal(expected.Threshold, actual.Threshold);
        Assert.Equal(expected.PseudoMeanIou, actual.PseudoMeanIou);
        Assert.Equal(expected.ValMeanIou, actual.ValMeanIou);
        Assert.Equal(expected.UpperBoundMeanIou, actual.UpperBoundMeanIou);
    }

    [Fact]
    public void Report_holds_every_stage_and_its_numbers_match_the_stage_outputs()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var report = WsssPipeline.Run(PipelineTestData.TinyOptions(data, dir.File("out")));

        Assert.Equal(AllStages, report.Stages.Select(s => s.Name));
        Assert.All(report.Stages, s => Assert.False(s.Reused));
        Assert.Equal(LocalizationMapKind.ClassToPatch, report.Map);                         // the cpu preset's default map

        // cam_miou is the best of the sweep written beside the maps, and the pseudo labels use its threshold.
        var sweep = CamThresholdSweep.Evaluate(dir.File("out/cam/maps-class-to-patch"), data, "train", new CamSweepOptions { Thresholds = CamThresholdSweep.Range(0, 0.95, 0.05) });
        Assert.Equal(sweep.BestMeanIou, report.CamMeanIou);
        Assert.Equal(sweep.BestThreshold, report.Threshold);
        Assert.Equal(SegmentationEvaluator.EvaluateDirectory(dir.File("out/pseudo-class-to-patch"), data, "train").Metrics.MeanIou, report.PseudoMeanIou);
        // val_miou and the upper bound are the scores of the written val predictions.
        Assert.Equal(SegmentationEvaluator.EvaluateDirectory(dir.File("out/seg/class-to-patch-gradclip/val-pred"), data, "val").Metrics.MeanIou, report.ValMeanIou);
        Assert.Equal(SegmentationEvaluator.EvaluateDirectory(dir.File("out/seg/upper-bound/val-pred"), data, "val").Metrics.MeanIou, report.UpperBoundMeanIou);
        Assert.Equal(report.ValMeanIou!.Value / report.UpperBoundMeanIou!.Value, report.WeakFullRatio!.Value, 12);

        var json = JsonNode.Parse(File.ReadAllText(dir.File("out/report.json")))!;
        foreach (var key in new[] { "cam_miou", "pseudo_miou", "val_miou", "upper_bound_miou", "seconds" })
            Assert.NotNull(json[key]);
        Assert.Equal(report.ValMeanIou!.Value, json["val_miou"]!.GetValue<double>());
        Assert.Equal(report.ValMeanIou!.Value, json["val_miou_by_decoder"]!["gradclip"]!.GetValue<double>());
        Assert.Equal(report.Stages.Sum(s => Math.Round(s.Seconds, 3)), json["stage_seconds"]!.AsObject().Sum(kv => kv.Value!.GetValue<double>()), 6);
        Assert.True(json["complete"]!.GetValue<bool>());
        Assert.Equal(3, json["run"]!["seed"]!.GetValue<long>());
        Assert.Equal(2, json["run"]!["threads"]!.GetValue<int>());
        Assert.Equal("Aaf", json["run"]!["model"]!["fusion"]!.GetValue<string>());
        Assert.Equal("cpu", json["run"]!["preset"]!.GetValue<string>());
        // The upper bound is trained on ground truth with the plain cross-entropy.
        Assert.Equal(SegmentationDecoderLoss.Naive, SegmentationRun.ReadInfo(dir.File("out/seg/upper-bound")).Config.Loss);
        Assert.Equal("gt", SegmentationRun.ReadInfo(dir.File("out/seg/upper-bound")).Labels);
    }

    [Fact]
    public void Interrupted_pipeline_resumes_without_redoing_finished_stages_and_ends_with_the_same_numbers()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var reference = WsssPipeline.Run(PipelineTestData.TinyOptions(data, dir.File("reference")));

        // 1. Stopped between stages: after the pseudo labels.
        var outDir = dir.File("out");
        var options = PipelineTestData.TinyOptions(data, outDir);
        using (var cancel = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() =>
                WsssPipeline.Run(options, null, cancel.Token, stage => { if (stage == "pseudo-class-to-patch") cancel.Cancel(); }));
        Assert.False(File.Exists(Path.Combine(outDir, "stages", "seg-class-to-patch-gradclip-train.json")));
        var camWeights = Path.Combine(outDir, "cam", "run", "model-final.bin");
        var camWritten = File.GetLastWriteTimeUtc(camWeights);

        // 2. Stopped inside a stage: the segmenter on pseudo labels at step 2 (its checkpoint is kept).
        using (var cancel = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() =>
                WsssPipeline.Run(options, new CancelAtStep(cancel, "train segmenter (seg-class-to-patch-gradclip)", 2), cancel.Token));
        var ledger = new StageLedger(Path.Combine(outDir, "stages"));
        Assert.Contains("\"running\"", File.ReadAllText(ledger.PathOf("seg-class-to-patch-gradclip-train")));
        Assert.False(File.Exists(Path.Combine(outDir, "seg", "class-to-patch-gradclip", WeakSeg.Training.RunDirectory.FinalWeightsFile)));

        // 3. Resumed: the four finished stages are reused, the CAM model is untouched, and every number equals the uninterrupted run's.
        var resumed = WsssPipeline.Run(options);
        Assert.Equal(AllStages, resumed.Stages.Select(s => s.Name));
        Assert.Equal(AllStages[..4], resumed.Stages.Where(s => s.Reused).Select(s => s.Name));
        Assert.Equal(camWritten, File.GetLastWriteTimeUtc(camWeights));
        AssertSameMetrics(reference, resumed);

        // 4. A finished pipeline run again redoes nothing: no output changes and the report keeps its numbers.
        var segWeights = Path.Combine(outDir, "seg", "class-to-patch-gradclip", WeakSeg.Training.RunDirectory.FinalWeightsFile);
        var segWritten = File.GetLastWriteTimeUtc(segWeights);
        var again = WsssPipeline.Run(options);
        Assert.All(again.Stages, s => Assert.True(s.Reused, s.Name));
        Assert.Equal(segWritten, File.GetLastWriteTimeUtc(segWeights));
        AssertSameMetrics(reference, again);
        Assert.Equal(resumed.Seconds, again.Seconds, 9);

        // 5. Another CAM schedule in the same folder is refused, naming the stage record.
        var changed = options with { CamRecipe = options.CamRecipe with { Trainer = options.CamRecipe.Trainer with { Steps = 5 } } };
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(changed));
        Assert.Contains(ledger.PathOf("cam-train"), e.Message);
        Assert.Contains("recipe.trainer.steps", e.Message);
    }

    [Fact]
    public void Stop_after_cam_writes_a_partial_report_and_a_later_full_run_reuses_it()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = PipelineTestData.TinyOptions(data, dir.File("out")) with { StopAfter = PipelineEnd.Cam, MapKind = LocalizationMapKind.Fused };
        var partial = WsssPipeline.Run(options);
        Assert.Equal(["cam-train", "maps-fused", "cam-eval-fused"], partial.Stages.Select(s => s.Name));
        Assert.Null(partial.PseudoMeanIou);
        var json = JsonNode.Parse(File.ReadAllText(partial.ReportPath))!;
        Assert.Null(json["val_miou"]);
        Assert.Equal("fused", json["map"]!.GetValue<string>());

        var full = WsssPipeline.Run(options with { StopAfter = PipelineEnd.Pseudo, UpperBound = false });
        Assert.Equal(["cam-train", "maps-fused", "cam-eval-fused"], full.Stages.Where(s => s.Reused).Select(s => s.Name));
        Assert.Equal(partial.CamMeanIou, full.CamMeanIou);
        Assert.NotNull(full.PseudoMeanIou);
    }

    [Fact]
    public void A_second_map_in_the_same_folder_reuses_the_cam_training_and_the_upper_bound()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = PipelineTestData.TinyOptions(data, dir.File("out"));
        var first = WsssPipeline.Run(options);
        var second = WsssPipeline.Run(options with { MapKind = LocalizationMapKind.Refined, Decoders = [SegmentationDecoderLoss.Naive] });
        Assert.Equal(["cam-train", "upper-bound-train", "upper-bound-val"], second.Stages.Where(s => s.Reused).Select(s => s.Name));
        Assert.Equal(["maps-refined", "cam-eval-refined", "pseudo-refined", "seg-refined-naive-train", "seg-refined-naive-val"],
            second.Stages.Where(s => !s.Reused).Select(s => s.Name));
        Assert.Equal(first.UpperBoundMeanIou, second.UpperBoundMeanIou);
        Assert.True(Directory.Exists(dir.File("out/cam/maps-class-to-patch")) && Directory.Exists(dir.File("out/cam/maps-refined")));
        // The default maps are the registrations' data. The paper preset's default is the paper's final map; cpu's class-to-patch.
        Assert.Equal(LocalizationMapKind.Refined, MethodRegistry.Get(BuiltInMethods.WeakTr).Maps.DefaultFor(MethodPreset.Paper));
        Assert.Equal(LocalizationMapKind.ClassToPatch, MethodRegistry.Get(BuiltInMethods.WeakTr).Maps.DefaultFor(MethodPreset.Cpu));
        // Without class-to-patch attention (the cam baseline), refined (19.4 % vs 7.8 % for its raw CAM).
        Assert.Equal(LocalizationMapKind.Refined, MethodRegistry.Get(BuiltInMethods.Cam).Maps.DefaultFor(MethodPreset.Cpu));
        Assert.Equal([LocalizationMapKind.Refined, LocalizationMapKind.Fused], MethodRegistry.Get(BuiltInMethods.Cam).Maps.Supported);
    }

    [Fact]
    public void Changing_tau_redoes_only_the_clipping_decoder_runs()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = PipelineTestData.TinyOptions(data, dir.File("out")) with { Decoders = [SegmentationDecoderLoss.GradientClipping, SegmentationDecoderLoss.Naive] };
        var first = WsssPipeline.Run(options);
        var changed = options with { Segmentation = options.Segmentation with { ClipStartValue = 5.0 } };
        var ledger = new StageLedger(dir.File("out/stages"));
        // The clipping run was recorded with the old τ: refused, naming its record.
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(changed));
        Assert.Contains(ledger.PathOf("seg-class-to-patch-gradclip-train"), e.Message);
        Assert.Contains("clip_start_value", e.Message);

        // With that record and its run removed, only the clipping stages run again; the naive decoder and the upper bound
        // (plain cross-entropy, where τ means nothing) are reused.
        File.Delete(ledger.PathOf("seg-class-to-patch-gradclip-train"));
        File.Delete(ledger.PathOf("seg-class-to-patch-gradclip-val"));
        Directory.Delete(dir.File("out/seg/class-to-patch-gradclip"), recursive: true);
        var second = WsssPipeline.Run(changed);
        Assert.Equal(["seg-class-to-patch-gradclip-train", "seg-class-to-patch-gradclip-val"], second.Stages.Where(s => !s.Reused).Select(s => s.Name));
        Assert.Equal(first.ValMeanIouByDecoder["naive"], second.ValMeanIouByDecoder["naive"]);
        Assert.Equal(first.UpperBoundMeanIou, second.UpperBoundMeanIou);
        Assert.Equal(5.0, SegmentationRun.ReadInfo(dir.File("out/seg/class-to-patch-gradclip")).Config.ClipStartValue);
    }

    [Fact]
    public void A_batch_larger_than_the_split_is_refused_before_any_stage_is_recorded()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = PipelineTestData.TinyOptions(data, dir.File("out"));
        var tooBig = options with { CamRecipe = options.CamRecipe with { Trainer = options.CamRecipe.Trainer with { BatchSize = 64 } } };
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(tooBig));
        Assert.Contains(Path.Combine(data, "ImageSets", "Segmentation", "train.txt"), e.Message);
        Assert.Contains("8 images, fewer than one batch of 64 for the CAM training", e.Message);
        Assert.False(File.Exists(dir.File("out/stages/cam-train.json")));
        var segTooBig = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(options with { Segmentation = options.Segmentation with { BatchSize = 9 } }));
        Assert.Contains("fewer than one batch of 9 for the segmenter", segTooBig.Message);
        Assert.Equal(StageState.New, new StageLedger(dir.File("out/stages")).Check("cam-train", new System.Text.Json.Nodes.JsonObject()).State);
    }
}
