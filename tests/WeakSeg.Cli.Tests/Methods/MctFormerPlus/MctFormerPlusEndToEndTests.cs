using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormerPlus;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Methods.MctFormerPlus;

/// <summary><c>weakseg train</c>, <c>cam</c> and <c>pipeline</c> with <c>--method mctformer-plus</c> on tiny data (exact resume:
/// <see cref="TrainPipelineTests"/>).</summary>
[Collection("Torch")]
public class MctFormerPlusEndToEndTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    [Fact]
    public void Train_and_cam_verbs_run_the_method_and_write_its_patch_cam_maps()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var run = dir.File("run");
        var train = Cli("train", "--method", "mctformer-plus", "--set", "model.cct_weight=0.5", "--data", data, "--out", run, "--config", config, "--seed", "3");
        Assert.True(train.Code == 0, train.Err);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))!;
        Assert.Equal("mctformer-plus", json["method"]!.GetValue<string>());
        Assert.Equal(0.5, json["model"]!["cct_weight"]!.GetValue<double>());
        Assert.True(json["model"]!["gwrp_scale_to_grid"]!.GetValue<bool>());                   // the cpu preset
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        Assert.Contains("\"cct\"", metrics[^1]);

        var cams = dir.File("cams");
        var cam = Cli("cam", "--run", run, "--out", cams, "--scales", "1", "--no-flip", "--map", "patch-cam");
        Assert.True(cam.Code == 0, cam.Err);
        var dataset = WeakSeg.Data.VocDataset.Open(data, "train");
        using var method = TrainPipeline.LoadTrained(run, out _);
        Assert.IsType<MctFormerPlusMethod>(method);
        using var scope = torch.NewDisposeScope();
        var (chw, h, w) = new WeakSeg.Data.EvalTransform().Apply(dataset.LoadImage(0));
        var expected = method.Localize(torch.tensor(chw, [3, h, w]), dataset.Samples[0].Classes,
            new LocalizationOptions { Scales = [1.0], Flip = false, MapKind = LocalizationMapKind.PatchCam });
        var saved = CamMapFile.Read(cams, dataset.Samples[0].Name);
        Assert.Equal(expected.data<float>().ToArray(), saved.Maps);

        var bad = Cli("train", "--method", "mctformer-plus", "--set", "model.gwrp_decay=2", "--data", data, "--out", dir.File("bad"), "--config", config);
        Assert.Equal(1, bad.Code);
        Assert.Contains("GwrpDecay must be in (0, 1]", bad.Err);
    }

    [Fact]
    public void Pipeline_verb_runs_end_to_end_and_writes_report_json()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var camConfig = dir.File("cam.json");
        File.WriteAllText(camConfig, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, (WeakSeg.Segmentation.SegmentationConfig.Cpu with
        {
            Backbone = new WeakSeg.Models.Vit.VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, Steps = 2, BatchSize = 4, WarmupSteps = 1,
        }).ToJson());
        var outDir = dir.File("out");
        var run = Cli("pipeline", "--method", "mctformer-plus", "--data", data, "--out", outDir, "--config", camConfig, "--seg-config", segConfig,
            "--scales", "1", "--decoders", "naive", "--no-upper-bound", "--threads", "2");
        Assert.True(run.Code == 0, run.Err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal("mctformer-plus", report["method"]!.GetValue<string>());
        Assert.Equal("fused", report["map"]!.GetValue<string>());                               // the cpu preset's default map
        Assert.NotNull(report["val_miou"]);
        Assert.True(Directory.GetFiles(Path.Combine(outDir, "pseudo-fused"), "*.png").Length == 8);
    }
}
