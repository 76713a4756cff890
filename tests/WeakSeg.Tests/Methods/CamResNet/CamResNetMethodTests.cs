using TorchSharp;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Methods.CamResNet;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Visualization;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.CamResNet;

[Collection("Torch")]
public class CamResNetMethodTests
{
    static TrainRecipe TinyRecipe(long steps) => TrainRecipe.Preset(CamResNetMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes)
        .With("model.image_size=32").With($"trainer.steps={steps}").With("trainer.batch_size=4").With("trainer.warmup_steps=1")
        .With("trainer.log_every=1").With("trainer.checkpoint_every=5").With("trainer.threads=2");

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Is_registered_with_a_cpu_preset_on_the_stride_8_grid_and_no_vit()
    {
        var factory = MethodRegistry.Get("cam-resnet18");
        var cpu = Assert.IsType<CamResNetConfig>(factory.DefaultConfig(MethodPreset.Cpu).WithNumClasses(10));
        var paper = Assert.IsType<CamResNetConfig>(factory.DefaultConfig(MethodPreset.Paper).WithNumClasses(20));
        Assert.Equal((96, 8, 10, true), (cpu.ImageSize, cpu.MapStride, cpu.NumClasses, cpu.Pretrained));
        Assert.Equal((512, 8, 0.1), (paper.ImageSize, paper.MapStride, paper.TrunkLearningRateScale));
        Assert.Null(((IMethodConfig)cpu).BackboneConfig);
        Assert.Equal([LocalizationMapKind.Fused], factory.Maps.Supported);
        var recipe = TrainRecipe.Preset(CamResNetMethod.MethodName, MethodPreset.Cpu).For(10);
        Assert.Equal(96, recipe.ImageSize);
        // JSON round trip through the generic recipe path, and the settings the user may change.
        var json = recipe.With("model.trunk_learning_rate_scale=0.5").ToJson();
        var back = TrainRecipe.FromJson(System.Text.Json.Nodes.JsonNode.Parse(json.ToJsonString())!.AsObject(), "<test>");
        Assert.Equal(cpu with { TrunkLearningRateScale = 0.5 }, back.ModelConfig);
        Assert.False(json["model"]!.AsObject().ContainsKey("map_stride"));
        var errors = factory.Validate(cpu with { ImageSize = 100, TrunkLearningRateScale = -1 });
        Assert.Contains("ImageSize must be a positive multiple of the output stride 8 (got 100)", errors);
        Assert.Contains(errors, e => e.StartsWith("TrunkLearningRateScale must be", StringComparison.Ordinal));
    }

    [Fact]
    public void The_trunk_at_initialisation_is_the_packaged_network_bit_for_bit()
    {
        torch.manual_seed(0);
        using var method = (CamResNetMethod)MethodRegistry.Create(CamResNetMethod.MethodName, MethodPreset.Cpu, 3);
        using var reference = new WeakSeg.Models.ResNet.ResNet(ResNetConfig.PackagedResNet18 with { Stages = 3, DilatedStages = [3] });
        var report = OnnxResNetImport.LoadPackaged(reference);
        Assert.Equal(5 + 20 + 25 + 25, report.Loaded.Count);   // stem, layer1, layer2, layer3
        var trunk = method.Model.state_dict().Where(kv => kv.Key.StartsWith("backbone.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["backbone.".Length..], kv => kv.Value);
        var expected = reference.state_dict();
        Assert.Equal(expected.Keys.Order(), trunk.Keys.Order());
        foreach (var (key, value) in expected)
            Assert.True(Same(value, trunk[key]), $"{key} differs from the packaged network");
        Assert.Equal(["backbone", "classifier"], method.Model.named_children().Select(c => c.name).ToArray());
        Assert.Equal(0.1, method.LearningRateScale("backbone.layer2.0.conv1.weight"));
        Assert.Equal(1.0, method.LearningRateScale("classifier.weight"));
    }

    [Fact]
    public void Trains_through_the_pipeline_lowers_the_loss_maps_on_the_stride_8_grid_and_round_trips_its_weights()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"), train: 12);
        var run = dir.File("run");
        var outcome = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = TinyRecipe(30) with { Trainer = TinyRecipe(30).Trainer with { BaseLr = 3e-3 } } });
        Assert.True(outcome.Result.Completed);
        var losses = TrainingPlots.ReadMetrics(Path.Combine(run, "metrics.jsonl")).Select(p => p.Loss).ToArray();
        Assert.Equal(30, losses.Length);
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.75 * first, $"mean loss of the first 5 steps {first:0.0000}, of the last 5 {last:0.0000}");

        // The generic map path: a 40×48 image → a 5×6 grid (stride 8), then maps at the image size for its classes.
        using var method = TrainPipeline.LoadTrained(run, out var config);
        Assert.Equal(CamResNetMethod.MethodName, config.Recipe.Method);
        method.Model.eval();
        using (torch.no_grad())
        {
            using var scope = torch.NewDisposeScope();
            var images = torch.randn(2, 3, 40, 48);
            var grid = method.PatchGridMaps(images, LocalizationMapKind.Fused);
            Assert.Equal(new long[] { 2, 3, 5, 6 }, grid.shape);
            Assert.True(grid.min().item<float>() >= 0);
            var e = Assert.Throws<WeakSegException>(() => method.PatchGridMaps(images, LocalizationMapKind.Refined));
            Assert.Contains("use --map fused", e.Message);

            // Save → load into a network built without the ONNX import: identical weights and maps.
            var path = dir.File("weights.bin");
            method.SaveWeights(path);
            var typed = Assert.IsType<CamResNetConfig>(method.Config);
            using var copy = new CamResNetMethod(typed with { Pretrained = false });
            Assert.False(Same(((IWsssMethod)copy).Model.state_dict()["backbone.conv1.weight"], method.Model.state_dict()["backbone.conv1.weight"]));
            ((IWsssMethod)copy).LoadWeights(path);
            copy.Model.eval();
            foreach (var (key, value) in method.Model.state_dict()) Assert.True(Same(value, copy.Model.state_dict()[key]), key);
            Assert.True(Same(grid, copy.PatchGridMaps(images, LocalizationMapKind.Fused)));
        }

        var maps = dir.File("maps");
        var summary = CamPipeline.Run(new CamRequest { RunDirectory = run, OutDirectory = maps, Localization = new LocalizationOptions { MapKind = LocalizationMapKind.Fused, Scales = [1.0, 0.5] }, Threads = 2 });
        Assert.Equal(12, summary.Written + summary.Skipped);
        var sample = WeakSeg.Data.VocDataset.Open(data, "train").Samples.First(s => s.Classes.Length > 0);
        var read = CamMapFile.Read(maps, sample.Name);
        Assert.Equal(sample.Classes, read.Classes);
        Assert.All(read.Maps, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void An_interrupted_run_resumes_to_the_same_weights()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var (full, resumed) = TrainedRuns.UninterruptedAndResumed(dir, data, TinyRecipe(10), stopAfter: 5);
        Assert.Equal(full.Result.LastLoss, resumed.Result.LastLoss);
        var a = TrainedRuns.Weights(dir.File("full"));
        var b = TrainedRuns.Weights(dir.File("split"));
        foreach (var (key, value) in a) Assert.True(value.AsSpan().SequenceEqual(b[key]), key);
    }

    [Fact]
    public void Training_flops_count_the_dilated_trunk_and_the_classifier()
    {
        // torchvision ResNet-18 (2-2-2-2) at 224: 1 813 561 344 conv multiply-adds (stem 118 013 952, layer1 4 × 115 605 504,
        // layers 2–4 each 57 802 752 + 3 × 115 605 504 + 6 422 528 downsample).
        Assert.Equal(2.0 * 1_813_561_344, ResNetFlops.Forward(ResNetConfig.PackagedResNet18 with { BlocksPerStage = [2, 2, 2, 2] }, 224, 224));
        // The CAM trunk at 32: stem 16² · 49·3·64, layer1 4 × 8² · 9·64·64, layer2 at 4² (64→128 conv, 3 × 128→128, 1×1 downsample),
        // layer3 dilated, still 4²: 128→256, 3 × 256→256, 1×1 downsample. Multiply-adds:
        double trunk = 256.0 * 49 * 3 * 64 + 4 * 64.0 * 9 * 64 * 64 + 16.0 * (9 * 64 * 128 + 3 * 9 * 128 * 128 + 64 * 128)
                       + 16.0 * (9 * 128 * 256 + 3 * 9 * 256 * 256 + 128 * 256);
        var config = CamResNetConfig.Cpu with { ImageSize = 32, NumClasses = 3 };
        Assert.Equal(2 * trunk, ResNetFlops.Forward(config.Network.Trunk, 32, 32));
        Assert.Equal(3 * (2 * trunk + 2.0 * 16 * 256 * 3), config.TrainFlopsPerImage());
    }
}
