using TorchSharp;
using WeakSeg.Evaluation;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using WeakSeg.Visualization;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class DeepLabModelTests
{
    static SegmentationConfig Tiny(SegmentationModel model, long steps) => WeakSeg.Pipelines.Presets.Get("cpu").Segmentation(model) with
    {
        NumClasses = 3, CropSize = 32, ClipPatchSize = 8, BatchSize = 4, Steps = steps, WarmupSteps = 1, LogEvery = 1, CheckpointEvery = 2,
        LearningRate = 2e-3, Loss = SegmentationDecoderLoss.Naive, MinRescale = 1, MaxRescale = 1,
    };

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Largefov_logits_live_on_the_stride_8_grid_of_the_pretrained_dilated_trunk()
    {
        torch.manual_seed(0);
        using var model = (DeepLabModel)SegmentationNetwork.Create(Tiny(SegmentationModel.DeepLabLargeFov, 1));
        Assert.Equal(8, DeepLabModel.Trunk.OutputStride);
        Assert.Equal(512, DeepLabModel.Trunk.OutputChannels);
        Assert.Equal(4, model.NumOutputClasses);
        Assert.Equal("backbone.", model.EncoderPrefix);
        var keys = model.state_dict().Keys.ToHashSet();
        foreach (var key in new[] { "backbone.layer4.2.conv2.weight", "classifier.fc6.weight", "classifier.fc7.bias", "classifier.fc8.weight" }) Assert.Contains(key, keys);
        Assert.Equal(new long[] { 256, 512, 3, 3 }, model.state_dict()["classifier.fc6.weight"].shape);   // cpu head width 256

        // Every trunk weight is the packaged network's (all 110 mapped initializers, layer4's three blocks included).
        Assert.Equal(110, model.ImportReport!.Loaded.Count);
        using var reference = new WeakSeg.Models.ResNet.ResNet(DeepLabModel.Trunk);
        OnnxResNetImport.LoadPackaged(reference);
        reference.eval();
        foreach (var (key, value) in reference.state_dict()) Assert.True(Same(value, model.state_dict()["backbone." + key]), key);

        model.eval();
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 40, 48);
        var grid = model.StrideEightLogits(images);
        Assert.Equal(new long[] { 2, 4, 5, 6 }, grid.shape);
        var logits = model.call(images);
        Assert.Equal(new long[] { 2, 4, 40, 48 }, logits.shape);
        var upsampled = nn.functional.interpolate(grid, size: [40, 48], mode: InterpolationMode.Bilinear, align_corners: false);
        Assert.True(Same(upsampled, logits));
        // The head by hand: fc8(relu(fc7(relu(fc6(features))))) with fc6 at dilation 4 (the cpu rate), dropout off in eval mode.
        var w = model.state_dict();
        var features = reference.call(ResNetInput.FromImageNetNormalised(images));
        var h = nn.functional.conv2d(features, w["classifier.fc6.weight"], w["classifier.fc6.bias"], padding: [4, 4], dilation: [4, 4]).relu();
        h = nn.functional.conv2d(h, w["classifier.fc7.weight"], w["classifier.fc7.bias"]).relu();
        h = nn.functional.conv2d(h, w["classifier.fc8.weight"], w["classifier.fc8.bias"]);
        TensorAssert.Close(h, grid, 1e-5, "LargeFOV head");
    }

    [Fact]
    public void Aspp_sums_one_dilated_conv_per_rate()
    {
        torch.manual_seed(1);
        var config = Tiny(SegmentationModel.DeepLabAspp, 1) with { DeepLab = DeepLabSettings.Cpu with { AsppRates = [1, 3], Pretrained = false } };
        using var model = (DeepLabModel)SegmentationNetwork.Create(config);
        Assert.Null(model.ImportReport);
        Assert.Equal(["classifier.c0.bias", "classifier.c0.weight", "classifier.c1.bias", "classifier.c1.weight"],
            model.state_dict().Keys.Where(k => k.StartsWith("classifier.", StringComparison.Ordinal)).Order().ToArray());
        model.eval();
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(1, 3, 32, 40);
        var w = model.state_dict();
        var features = model.Backbone.call(ResNetInput.FromImageNetNormalised(images));
        var expected = nn.functional.conv2d(features, w["classifier.c0.weight"], w["classifier.c0.bias"], padding: [1, 1], dilation: [1, 1])
            .add(nn.functional.conv2d(features, w["classifier.c1.weight"], w["classifier.c1.bias"], padding: [3, 3], dilation: [3, 3]));
        TensorAssert.Close(expected, model.StrideEightLogits(images), 1e-5, "ASPP");
        Assert.Equal(0.0, w["classifier.c1.bias"].abs().sum().item<float>());
        Assert.InRange(w["classifier.c0.weight"].std().item<float>(), 0.008, 0.012);   // N(0, 0.01²)
        var errors = (config with { DeepLab = DeepLabSettings.Cpu with { AsppRates = [], HeadChannels = 0 } }).Validate();
        Assert.Contains("DeepLab.HeadChannels must be ≥ 1 (got 0)", errors);
        Assert.Contains("DeepLab.AsppRates must be a non-empty list of dilations ≥ 1", errors);
    }

    [Fact]
    public void Segmenter_configurations_read_and_write_as_before_and_a_deeplab_names_its_model()
    {
        var segmenter = WeakSeg.Pipelines.Presets.Get("cpu").Segmentation(SegmentationModel.Segmenter);
        Assert.Equal(SegmentationConfig.Cpu.ToJson(), segmenter.ToJson());
        Assert.DoesNotContain("\"model\"", segmenter.ToJson());
        Assert.DoesNotContain("deep_lab", segmenter.ToJson());
        var deeplab = WeakSeg.Pipelines.Presets.Get("paper").Segmentation(SegmentationModel.DeepLabAspp);
        Assert.Contains("\"model\": \"deeplab-aspp\"", deeplab.ToJson());
        var back = SegmentationConfig.FromJson(deeplab.ToJson());
        Assert.Equal(SegmentationModel.DeepLabAspp, back.Model);
        Assert.Equal([6, 12, 18, 24], back.ResolvedDeepLab.AsppRates);
        Assert.Equal((1024, 12, 0.1), (back.ResolvedDeepLab.HeadChannels, back.ResolvedDeepLab.LargeFovRate, back.EncoderLearningRateScale));
        Assert.Equal(deeplab.ToJson(), back.ToJson());
    }

    [Fact]
    public void Trains_on_tiny_data_lowers_the_loss_and_seg_infer_works_from_its_run_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var data = SegmentationRunTests.BlocksDataset(dir.File("data"));
        var run = dir.File("run");
        var result = SegmentationRun.Train(new SegmentationTrainRequest
        {
            DataRoot = data, Split = "train", RunDirectory = run, Config = Tiny(SegmentationModel.DeepLabLargeFov, 30), Seed = 1, Threads = 2, LoaderWorkers = 1,
        });
        Assert.True(result.Completed);
        var losses = TrainingPlots.ReadMetrics(Path.Combine(run, "metrics.jsonl")).Select(p => p.Loss).ToArray();
        Assert.Equal(30, losses.Length);
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.75 * first, $"mean loss of the first 5 steps {first:0.0000}, of the last 5 {last:0.0000}");
        Assert.Equal(SegmentationModel.DeepLabLargeFov, SegmentationRun.ReadInfo(run).Config.Model);

        var pred = dir.File("pred");
        var (code, stdout, err) = SegmentationRunTests.RunCli("seg-infer", "--run", run, "--split", "val", "--out", pred, "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Contains("wrote 3 predictions", stdout);
        var eval = SegmentationEvaluator.EvaluateDirectory(pred, data, "val");
        // all-background scores ≈ 0.06 here
        Assert.True(eval.Metrics.MeanIou > 0.2, $"mIoU {eval.Metrics.MeanIou}");

        // The command line chooses the model.
        var cli = SegmentationRunTests.RunCli("seg-train", "--labels", "gt", "--data", data, "--split", "train", "--out", dir.File("cli"), "--model", "deeplab-aspp",
            "--steps", "1", "--batch-size", "2", "--threads", "2");
        Assert.True(cli.Code == 0, cli.Err);
        Assert.Equal(SegmentationModel.DeepLabAspp, SegmentationRun.ReadInfo(dir.File("cli")).Config.Model);
        Assert.Equal(1, SegmentationRunTests.RunCli("seg-train", "--labels", "gt", "--data", data, "--out", dir.File("bad"), "--model", "deeplab-v9").Code);
    }

    [Fact]
    public void A_resumed_run_ends_with_the_weights_of_an_uninterrupted_run()
    {
        using var dir = TestPaths.NewTempDir();
        var data = SegmentationRunTests.BlocksDataset(dir.File("data"), train: 4, val: 1);
        var config = Tiny(SegmentationModel.DeepLabLargeFov, 6) with { BatchSize = 2 };
        SegmentationTrainRequest Request(string run) => new() { DataRoot = data, Split = "train", RunDirectory = run, Config = config, Seed = 5, Threads = 2, LoaderWorkers = 1 };
        SegmentationRun.Train(Request(dir.File("a")));
        using var cancel = new CancellationTokenSource();
        var partial = SegmentationRun.Train(Request(dir.File("b")), cancellationToken: cancel.Token, stepCompleted: r => { if (r.Step == 3) cancel.Cancel(); });
        Assert.False(partial.Completed);
        var resumed = SegmentationRun.Train(Request(dir.File("b")) with { Resume = true });
        Assert.True(resumed.Completed);
        var (a, _, _) = SegmentationRun.Load(dir.File("a"), torch.CPU);
        var (b, _, _) = SegmentationRun.Load(dir.File("b"), torch.CPU);
        using (a)
        using (b)
        {
            var pb = b.state_dict();
            foreach (var (name, p) in a.state_dict()) Assert.True(Same(p, pb[name]), name);
            Assert.IsType<DeepLabModel>(a);
        }
    }
}
