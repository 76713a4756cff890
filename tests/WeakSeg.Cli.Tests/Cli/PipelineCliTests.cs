using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Cli;

[Collection("Torch")]
public class PipelineCliTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    static string Inv(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    [Fact]
    public void Synth_train_cam_evalcam_pseudo_eval_are_consistent()
    {
        using var dir = TestPaths.NewTempDir();
        var data = dir.File("data");
        var synth = Cli("synth", "--out", data, "--train", "8", "--val", "2", "--size", "32", "--classes", "3", "--threads", "2");
        Assert.True(synth.Code == 0, synth.Err);
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 3).ToJsonString());
        var run = dir.File("run");
        var train = Cli("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--seed", "11", "--lr", "0.002");
        Assert.True(train.Code == 0, train.Err);
        Assert.True(File.Exists(Path.Combine(run, "model-final.bin")));

        // config.json records the method, resolved method config, trainer options (with the flags), data and class names.
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!;
        Assert.Equal("mctformer-v2", json["method"]!.GetValue<string>());
        Assert.Equal(32, json["image_size"]!.GetValue<int>());
        Assert.Equal(3, json["model"]!["num_classes"]!.GetValue<int>());
        Assert.Equal(16, json["model"]!["backbone"]!["embed_dim"]!.GetValue<int>());
        Assert.Equal(11, json["trainer"]!["seed"]!.GetValue<long>());
        Assert.Equal(0.002, json["trainer"]!["base_lr"]!.GetValue<double>());
        Assert.Equal(3, json["trainer"]!["steps"]!.GetValue<long>());
        Assert.Equal("train", json["data"]!["split"]!.GetValue<string>());
        Assert.Equal(Path.GetFullPath(data), json["data"]!["root"]!.GetValue<string>());
        Assert.Equal(4, json["data"]!["class_names"]!.AsArray().Count);

        var cams = dir.File("cams");
        var cam = Cli("cam", "--run", run, "--out", cams, "--scales", "1,0.5", "--threads", "2");
        Assert.True(cam.Code == 0, cam.Err);
        Assert.Contains("wrote maps of 8 images", cam.Out);
        Assert.Contains("wrote maps of 0 images", Cli("cam", "--run", run, "--out", cams, "--scales", "1,0.5").Out);   // resumable: all skipped

        // The saved maps are exactly the method's maps of the image's classes.
        var dataset = VocDataset.Open(data, "train");
        using (var method = TrainPipeline.LoadTrained(run, out _))
        using (var scope = torch.NewDisposeScope())
        {
            var (chw, h, w) = new EvalTransform().Apply(dataset.LoadImage(0));
            var expected = method.Localize(torch.tensor(chw, [3, h, w]), dataset.Samples[0].Classes,
                new LocalizationOptions { Scales = [1.0, 0.5], Flip = true, MapKind = LocalizationMapKind.Refined });
            var saved = CamMapFile.Read(cams, dataset.Samples[0].Name);
            Assert.Equal(dataset.Samples[0].Classes, saved.Classes);
            Assert.Equal(expected.data<float>().ToArray(), saved.Maps);
        }

        var evalCamJson = dir.File("eval-cam.json");
        var evalCam = Cli("eval-cam", "--cams", cams, "--data", data, "--json", evalCamJson);
        Assert.True(evalCam.Code == 0, evalCam.Err);
        var sweepJson = JsonNode.Parse(File.ReadAllText(evalCamJson))!;
        double best = sweepJson["best_miou"]!.GetValue<double>(), threshold = sweepJson["best_threshold"]!.GetValue<double>();

        // Recompute the sweep from the maps in memory.
        var pairs = dataset.Samples.Select(s => (CamMapFile.Read(cams, s.Name), LabelPng.Read(s.MaskPath!).Labels));
        var recomputed = CamThresholdSweep.Run(pairs, dataset.ClassNames.All);
        Assert.Equal(recomputed.BestMeanIou, best, 12);
        Assert.Equal(recomputed.BestThreshold, threshold, 12);

        var pseudoDir = dir.File("pseudo");
        Assert.Equal(0, Cli("pseudo", "--cams", cams, "--out", pseudoDir, "--threshold", Inv(threshold)).Code);
        Assert.Equal(8, Directory.GetFiles(pseudoDir, "*.png").Length);
        var evalJson = dir.File("eval.json");
        Assert.Equal(0, Cli("eval", "--pred", pseudoDir, "--data", data, "--split", "train", "--json", evalJson).Code);
        var pseudoMiou = JsonNode.Parse(File.ReadAllText(evalJson))!["miou"]!.GetValue<double>();
        Assert.Equal(best, pseudoMiou, 6);
    }

    [Fact]
    public void Tiny_demo_writes_metrics_overlays_and_skips_finished_stages()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("demo");
        string[] args = ["demo", "--out", outDir, "--train-images", "8", "--val-images", "2", "--data-size", "32", "--steps", "2",
            "--batch-size", "4", "--overlays", "2", "--scales", "1", "--threads", "2"];
        var first = Cli(args);
        Assert.True(first.Code == 0, first.Err);
        Assert.Contains("CAM mIoU", first.Out);

        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!;
        var evalCam = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "eval-cam.json")))!;
        Assert.Equal(evalCam["best_miou"]!.GetValue<double>(), metrics["cam_miou"]!.GetValue<double>());
        Assert.Equal(evalCam["best_threshold"]!.GetValue<double>(), metrics["cam_best_threshold"]!.GetValue<double>());
        Assert.Equal(0.5, metrics["threshold"]!.GetValue<double>());                       // the pseudo labels': MCTformer+'s preset value
        Assert.StartsWith("preset: ", metrics["threshold_source"]!.GetValue<string>());
        var stages = metrics["stage_seconds"]!.AsObject();
        foreach (var stage in new[] { "synth", "train", "cam", "sweep", "pseudo", "eval", "overlays" }) Assert.True(stages.ContainsKey(stage), stage);
        Assert.True(metrics["seconds"]!.GetValue<double>() >= stages.Sum(kv => kv.Value!.GetValue<double>()) - 1e-6);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(outDir, "overlays"), "*.png").Length);
        var runConfig = RunConfig.Load(DemoPipeline.RunDirectory(outDir, BuiltInMethods.DemoMethod));
        Assert.Equal(2, runConfig.Recipe.Trainer.Steps);
        Assert.Equal(4, runConfig.Recipe.Trainer.BatchSize);

        // Second run: every stage is reused from the ledger (same files, same numbers).
        var weights = Path.Combine(DemoPipeline.RunDirectory(outDir, BuiltInMethods.DemoMethod), "model-final.bin");
        var stamp = File.GetLastWriteTimeUtc(weights);
        var second = Cli(args);
        Assert.True(second.Code == 0, second.Err);
        Assert.Contains("cam-train: done before, reused", second.Out);           // the stage ledger, as `pipeline`
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(weights));
        var again = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!;
        Assert.Equal(metrics["cam_miou"]!.GetValue<double>(), again["cam_miou"]!.GetValue<double>());
    }

    [Fact]
    public void Cli_errors_name_the_problem()
    {
        using var dir = TestPaths.NewTempDir();
        var cam = Cli("cam", "--run", dir.Path, "--out", dir.File("cams"));
        Assert.Equal(1, cam.Code);
        Assert.Contains(Path.Combine(dir.Path, "config.json"), cam.Err);
        var train = Cli("train", "--method", "nope", "--data", dir.Path, "--out", dir.File("run"));
        Assert.Equal(1, train.Code);
        Assert.Contains("unknown method 'nope'", train.Err);
        Assert.Contains("mctformer-v2", train.Err);
    }

    [Fact]
    public void Train_init_prints_the_import_report()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        torch.manual_seed(1);
        using var vit = new WeakSeg.Models.Vit.VisionTransformer(PipelineTestData.TinyBackbone);
        var weights = dir.File("deit.safetensors");
        WeakSeg.Interop.SafetensorsFile.Write(weights, vit.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 1).ToJsonString());
        var run = Cli("train", "--method", "mctformer-v1", "--data", data, "--out", dir.File("run"), "--config", config, "--init", weights);
        Assert.True(run.Code == 0, run.Err);
        int count = vit.state_dict().Count;
        Assert.Contains($"loaded {count - 2}, missing 0, skipped 2 (cls_token, pos_embed), unexpected 0", run.Out);
        var json = JsonNode.Parse(File.ReadAllText(dir.File("run/config.json")))!;
        Assert.Equal(Path.GetFullPath(weights), json["init"]!.GetValue<string>());

        var missing = Cli("train", "--method", "mctformer-v1", "--data", data, "--out", dir.File("run2"), "--config", config, "--init", dir.File("none.safetensors"));
        Assert.Equal(1, missing.Code);
        Assert.Contains(dir.File("none.safetensors"), missing.Err);
    }

    [Fact]
    public void Weaktr_trains_through_the_registry_with_the_chosen_fusion_and_writes_its_fine_cams()
    {
        using var dir = TestPaths.NewTempDir();
        var data = dir.File("data");
        Assert.Equal(0, Cli("synth", "--out", data, "--train", "8", "--val", "2", "--size", "32", "--classes", "3", "--threads", "2").Code);
        var config = dir.File("tiny.json");
        var overlay = PipelineTestData.TinyOverlay(steps: 2);
        overlay["model"]!.AsObject().Remove("cam_layers");                      // an MCTformer field; WeakTr fuses every layer
        overlay["model"]!["ffn_hidden"] = 2;
        File.WriteAllText(config, overlay.ToJsonString());
        var run = dir.File("run");
        var train = Cli("train", "--method", "weaktr", "--set", "model.fusion=mean-sum", "--data", data, "--out", run, "--config", config, "--seed", "5");
        Assert.True(train.Code == 0, train.Err);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!;
        Assert.Equal("weaktr", json["method"]!.GetValue<string>());
        Assert.Equal("MeanSum", json["model"]!["fusion"]!.GetValue<string>());

        var cams = dir.File("cams");
        Assert.Equal(0, Cli("cam", "--run", run, "--out", cams, "--scales", "1", "--no-flip").Code);
        var dataset = VocDataset.Open(data, "train");
        using var method = TrainPipeline.LoadTrained(run, out _);
        using var scope = torch.NewDisposeScope();
        var (chw, h, w) = new EvalTransform().Apply(dataset.LoadImage(1));
        var image = torch.tensor(chw, [1, 3, h, w]);
        // Fine CAM of the image's classes, bilinearly resized to the image and max-normalised per class: computed here by hand.
        var grid = method.PatchGridMaps(image, LocalizationMapKind.Refined);                          // [1, K, h/p, w/p]
        var full = torch.nn.functional.interpolate(grid, size: [h, w], mode: torch.InterpolationMode.Bilinear, align_corners: false)[0];
        var classes = dataset.Samples[1].Classes;
        var picked = full.index_select(0, torch.tensor(classes.Select(c => (long)(c - 1)).ToArray()));
        var max = picked.clamp_min(0).amax([1, 2], keepdim: true);
        var expected = picked.clamp_min(0) / torch.where(max > 0, max, torch.ones_like(max));
        var saved = CamMapFile.Read(cams, dataset.Samples[1].Name);
        Assert.Equal(classes, saved.Classes);
        var diff = (torch.tensor(saved.Maps, [classes.Length, h, w]) - expected).abs().max().item<float>();
        Assert.True(diff < 1e-4, $"max difference {diff}");

        // A field the method's configuration does not have is an error naming the assignment and the field (--fusion is --set model.fusion=).
        var wrong = Cli("train", "--method", "mctformer-v2", "--fusion", "aaf", "--data", data, "--out", dir.File("run2"));
        Assert.Equal(1, wrong.Code);
        Assert.Contains("--set model.fusion=aaf: bad 'mctformer-v2' model configuration", wrong.Err);
        Assert.Contains("'fusion'", wrong.Err);
        var badValue = Cli("train", "--method", "weaktr", "--set", "model.fusion=sideways", "--data", data, "--out", dir.File("run3"));
        Assert.Equal(1, badValue.Code);
        Assert.Contains("'sideways' is not one of MeanSum, Aaf, FixedRandom", badValue.Err);
        var badKey = Cli("train", "--method", "weaktr", "--set", "fusion", "--data", data, "--out", dir.File("run4"));
        Assert.Equal(1, badKey.Code);
        Assert.Contains("--set fusion: expected KEY=VALUE", badKey.Err);
        var badSection = Cli("train", "--method", "weaktr", "--set", "modle.fusion=aaf", "--data", data, "--out", dir.File("run5"));
        Assert.Equal(1, badSection.Code);
        Assert.Contains("unknown field 'modle'", badSection.Err);
    }

    [Fact]
    public void Pipeline_verb_writes_report_json_and_rejects_bad_input_with_clear_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var camConfig = dir.File("cam.json");
        File.WriteAllText(camConfig, """
            {"model": {"backbone": {"image_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2}, "ffn_hidden": 2},
             "trainer": {"steps": 3, "batch_size": 4, "warmup_steps": 1}}
            """);
        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, PipelineTestData.TinySegmentationConfigJson(steps: 3));
        var outDir = dir.File("out");
        string[] common = ["pipeline", "--method", "weaktr", "--fusion", "mean-sum", "--data", data, "--out", outDir, "--config", camConfig,
            "--seg-config", segConfig, "--scales", "1", "--map", "fused", "--threads", "2"];
        var run = Cli([.. common, "--decoders", "gradclip,naive", "--no-upper-bound"]);
        Assert.True(run.Code == 0, run.Err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal("weaktr", report["method"]!.GetValue<string>());
        Assert.Equal("fused", report["map"]!.GetValue<string>());
        var byDecoder = report["val_miou_by_decoder"]!.AsObject();
        Assert.Equal(["gradclip", "naive"], byDecoder.Select(kv => kv.Key));
        Assert.Equal(byDecoder["gradclip"]!.GetValue<double>(), report["val_miou"]!.GetValue<double>());
        Assert.Null(report["upper_bound_miou"]);
        // The fusion and the segmenter configuration reached the stages.
        var camRun = RunConfig.Load(Path.Combine(outDir, "cam", "run"));
        Assert.Equal(WeakSeg.Methods.WeakTr.WeakTrFusion.MeanSum, ((WeakSeg.Methods.WeakTr.WeakTrConfig)camRun.Recipe.ModelConfig).Fusion);
        Assert.Equal(WeakSeg.Segmentation.SegmentationDecoderLoss.Naive,
            WeakSeg.Segmentation.SegmentationRun.ReadInfo(Path.Combine(outDir, "seg", "fused-naive")).Config.Loss);
        Assert.Equal(3, WeakSeg.Segmentation.SegmentationRun.ReadInfo(Path.Combine(outDir, "seg", "fused-naive")).Config.Steps);

        var badDecoder = Cli([.. common, "--decoders", "gradclip,fancy"]);
        Assert.Equal(1, badDecoder.Code);
        Assert.Contains("--decoders: unknown decoder 'fancy'", badDecoder.Err);
        var changed = Cli([.. common, "--cam-steps", "5"]);
        Assert.Equal(1, changed.Code);
        Assert.Contains(Path.Combine(outDir, "stages", "cam-train.json"), changed.Err);
        var missing = Cli("pipeline", "--data", dir.File("nowhere"), "--out", dir.File("out2"));
        Assert.Equal(1, missing.Code);
        Assert.Contains(dir.File("nowhere"), missing.Err);
        Assert.DoesNotContain("   at ", missing.Err);
    }
}
