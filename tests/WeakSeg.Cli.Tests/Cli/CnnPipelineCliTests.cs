using System.Text.Json.Nodes;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Segmentation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Cli;

/// <summary>The CNN pieces through `weakseg pipeline`: the ResNet-18 CAM method and a DeepLab segmenter chosen with --seg-model.</summary>
[Collection("Torch")]
public class CnnPipelineCliTests
{
    [Fact]
    public void Pipeline_trains_cam_resnet18_and_retrains_a_deeplab_chosen_by_seg_model()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var outDir = dir.File("out");
        string[] common = ["pipeline", "--method", "cam-resnet18", "--data", data, "--out", outDir, "--set", "model.image_size=32",
            "--set", "trainer.steps=3", "--set", "trainer.batch_size=4", "--set", "trainer.warmup_steps=1", "--scales", "1", "--threads", "2"];
        var run = SegmentationRunTests.RunCli([.. common, "--seg-model", "deeplab-largefov", "--seg-steps", "2", "--decoders", "naive", "--no-upper-bound"]);
        Assert.True(run.Code == 0, run.Err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal("cam-resnet18", report["method"]!.GetValue<string>());
        Assert.Equal("fused", report["map"]!.GetValue<string>());
        Assert.InRange(report["cam_miou"]!.GetValue<double>(), 0, 1);
        Assert.Equal("cam-resnet18", RunConfig.Load(Path.Combine(outDir, "cam", "run")).Recipe.Method);
        var seg = SegmentationRun.ReadInfo(Path.Combine(outDir, "seg", "fused-naive")).Config;
        Assert.Equal(SegmentationModel.DeepLabLargeFov, seg.Model);
        // the class count of both models is the dataset's (3), never a preset's placeholder
        Assert.Equal((3, 3), (RunConfig.Load(Path.Combine(outDir, "cam", "run")).Recipe.ModelConfig.NumClasses, seg.NumClasses));
        Assert.Equal(DeepLabSettings.Cpu.LargeFovRate, seg.ResolvedDeepLab.LargeFovRate);

        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, PipelineTestData.TinySegmentationConfigJson(steps: 2));
        var both = SegmentationRunTests.RunCli([.. common, "--seg-model", "deeplab-aspp", "--seg-config", segConfig]);
        Assert.Equal(1, both.Code);
        Assert.Contains("--seg-model: give the network in the --seg-config file's \"model\" field", both.Err);
        var vitOnly = SegmentationRunTests.RunCli([.. common, "--backbone", "resnet18-s8"]);
        Assert.Equal(1, vitOnly.Code);
        Assert.Contains("--backbone resnet18-s8: method 'cam-resnet18' has no ViT backbone", vitOnly.Err);
    }
}
