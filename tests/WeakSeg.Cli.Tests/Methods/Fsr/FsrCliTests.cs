using System.Text.Json.Nodes;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Methods.Fsr;

/// <summary><c>weakseg train --method fsr</c> and <c>weakseg pipeline --method fsr</c> end to end on tiny data.</summary>
[Collection("Torch")]
public class FsrCliTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    const string TinyFsrConfig = """
        {"model": {"backbone": {"image_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2},
                   "crop_size": 32, "decoder_width": 8, "projector_hidden_dim": 16, "projector_bottleneck_dim": 8, "projector_out_dim": 16,
                   "random_masking_steps": 1, "segmentation": {"weight": 0.1, "start_step": 1}},
         "trainer": {"steps": 2, "batch_size": 4, "warmup_steps": 1}}
        """;

    [Fact]
    public void Train_and_pipeline_run_end_to_end_and_bad_options_are_one_line()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("fsr.json");
        File.WriteAllText(config, TinyFsrConfig);

        var train = Cli("train", "--method", "fsr", "--data", data, "--out", dir.File("train"), "--config", config, "--threads", "2");
        Assert.True(train.Code == 0, train.Err);
        Assert.True(File.Exists(Path.Combine(dir.File("train"), "model-final.bin")));

        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, (WeakSeg.Segmentation.SegmentationConfig.Cpu with
        {
            Backbone = new WeakSeg.Models.Vit.VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, Steps = 2, BatchSize = 4, WarmupSteps = 1,
        }).ToJson());
        var outDir = dir.File("pipeline");
        var pipeline = Cli("pipeline", "--method", "fsr", "--data", data, "--out", outDir, "--config", config, "--seg-config", segConfig,
            "--scales", "1", "--map", "fused", "--no-upper-bound", "--threads", "2");
        Assert.True(pipeline.Code == 0, pipeline.Err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal("fsr", report["method"]!.GetValue<string>());
        foreach (var field in new[] { "cam_miou", "pseudo_miou", "val_miou" })
            Assert.InRange(report[field]!.GetValue<double>(), 0.0, 100.0);

        var bad = Cli("train", "--method", "fsr", "--data", data, "--out", dir.File("bad"), "--config", config, "--set", "model.mask_ratio=1.5");
        Assert.Equal(1, bad.Code);
        Assert.Contains("MaskRatio must be in (0, 1) (got 1.5)", bad.Err);
        Assert.DoesNotContain("   at ", bad.Err);
        var block = Cli("train", "--method", "fsr", "--data", data, "--out", dir.File("bad2"), "--config", config, "--set", "model.mask_block_patches=3");
        Assert.Equal(1, block.Code);
        Assert.Contains("MaskBlockPatches (3) must divide the 4×4 patch grid", block.Err);
    }
}
