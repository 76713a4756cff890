using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models.ResNet;

[Collection("Torch")]
public class HybridBackboneTests
{
    static VitConfig TinyHybrid(bool freeze = true, VitStem stem = VitStem.ResNet18Stride8) => new()
    {
        ImageSize = 32, PatchSize = VitStems.Stride(stem)!.Value, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0,
        Stem = stem, FreezeStem = freeze,
    };

    static TrainerOptions Options(long steps) => new()
    {
        Steps = steps, BatchSize = 4, BaseLr = 3e-3, MinLr = 3e-3, WarmupStartLr = 3e-3, WarmupSteps = 0,
        WeightDecay = 0.05, GradClipNorm = 1.0, CheckpointEvery = 1000, LogEvery = 1, Seed = 3, Threads = 2,
    };

    /// <summary>The same 4 images and labels at every step (created inside the step, as the trainer requires).</summary>
    static IBatchStream FixedBatch(int seed, int side = 32)
    {
        var random = new Random(seed);
        var pixels = Enumerable.Range(0, 4 * 3 * side * side).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] labels = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0];
        return new DelegateBatchStream(_ => Endless().Select(_ => new TrainBatch(torch.tensor(pixels, [4, 3, side, side]), torch.tensor(labels, [4, 3]))));
        static IEnumerable<int> Endless() { while (true) yield return 0; }
    }

    static Dictionary<string, float[]> Snapshot(nn.Module model, string prefix) => model.state_dict()
        .Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
        .ToDictionary(p => p.Key, p => p.Value.to_type(ScalarType.Float32).data<float>().ToArray());

    [Fact]
    public void Hybrid_stem_tokens_come_from_the_pretrained_resnet_on_the_stride_8_grid()
    {
        torch.manual_seed(1);
        using var vit = new VisionTransformer(TinyHybrid());
        var embed = vit.modules().OfType<HybridEmbed>().Single();
        Assert.Equal(8, embed.Stride);
        var report = embed.ImportReport!;
        Assert.Equal(5 + 20 + 25, report.Loaded.Count);   // stem conv+BN, layer1 (2 blocks), layer2 (2 blocks + downsample)
        Assert.Contains("layer3.0.conv1.weight", report.Unexpected);
        Assert.Contains("patch_embed.backbone.layer2.1.bn2.running_var", vit.state_dict().Keys);
        Assert.Contains("patch_embed.proj.weight", vit.state_dict().Keys);

        // The CNN part equals the packaged network's stride-8 map on the converted input.
        using var reference = new WeakSeg.Models.ResNet.ResNet(ResNetConfig.PackagedResNet18 with { Stages = 2 });
        OnnxResNetImport.LoadPackaged(reference);
        reference.eval();
        vit.train();   // the CNN's BN keeps its statistics even in train mode
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var images = torch.randn(2, 3, 40, 48);
        var expected = reference.forward(ResNetInput.FromImageNetNormalised(images));
        var actual = embed.Backbone.forward(ResNetInput.FromImageNetNormalised(images));
        Assert.True(actual.eq(expected).all().item<bool>());
        Assert.Equal(new long[] { 2, 128, 5, 6 }, expected.shape);
        var output = vit.ForwardBlocks(images);
        Assert.Equal((5, 6), (output.GridHeight, output.GridWidth));
        Assert.Equal(30, output.PatchTokens.shape[1]);
    }

    [Fact]
    public void Stride_16_stem_needs_patch_size_16_and_gives_the_stride_16_grid()
    {
        var wrong = TinyHybrid() with { Stem = VitStem.ResNet18Stride16 };
        var e = Assert.Throws<WeakSegException>(() => new VisionTransformer(wrong));
        Assert.Contains("PatchSize must be 16 for stem resnet18-s16 (its stride; got 8)", e.Message);

        using var vit = new VisionTransformer(TinyHybrid(stem: VitStem.ResNet18Stride16));
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var output = vit.ForwardBlocks(torch.randn(1, 3, 64, 32));
        Assert.Equal((4, 2), (output.GridHeight, output.GridWidth));
    }

    [Fact]
    public void Frozen_stem_stays_bit_identical_through_training_and_the_loss_falls()
    {
        using var dir = TestPaths.NewTempDir();
        torch.manual_seed(3);
        using var method = new MctFormerMethod(new MctFormerConfig { NumClasses = 3, Backbone = TinyHybrid(freeze: true), CamLayers = 1 });
        var before = Snapshot(method.Model, HybridEmbed.BackbonePrefix);
        var projBefore = Snapshot(method.Model, "patch_embed.proj.");
        Assert.Equal(10 + 10 * 5, before.Count);   // 10 conv weights; 10 BNs × (weight, bias, running mean, var, num_batches_tracked)
        Assert.DoesNotContain(((ITrainable)method).TrainableParameters(), p => p.Name.StartsWith(HybridEmbed.BackbonePrefix, StringComparison.Ordinal));

        var losses = new List<float>();
        var trainer = new Trainer(Options(25), dir.File("run")) { StepCompleted = s => losses.Add(s.Loss) };
        trainer.Run(method, FixedBatch(5));

        var after = Snapshot(method.Model, HybridEmbed.BackbonePrefix);
        foreach (var (key, values) in before) Assert.True(values.AsSpan().SequenceEqual(after[key]), $"{key} changed");
        Assert.False(projBefore["patch_embed.proj.weight"].AsSpan().SequenceEqual(Snapshot(method.Model, "patch_embed.proj.")["patch_embed.proj.weight"]));
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        Assert.True(losses[^1] < 0.7f * losses[0], $"loss {losses[0]} → {losses[^1]}");
    }

    [Fact]
    public void Fine_tuned_stem_trains_at_its_own_rate_and_keeps_its_batch_norm_statistics()
    {
        using var dir = TestPaths.NewTempDir();
        torch.manual_seed(4);
        var backbone = TinyHybrid(freeze: false) with { StemLearningRateScale = 0.25 };
        using var method = new MctFormerMethod(new MctFormerConfig { NumClasses = 3, Backbone = backbone, CamLayers = 1 });
        Assert.Equal(0.25, method.LearningRateScale("patch_embed.backbone.layer1.0.conv1.weight"));
        Assert.Equal(1.0, method.LearningRateScale("patch_embed.proj.weight"));
        Assert.Equal(1.0, method.LearningRateScale("blocks.0.attn.qkv.weight"));
        using (var setup = ParameterGroups.Create(((ITrainable)method).TrainableParameters(), Options(1), method.LearningRateScale))
        {
            Assert.Contains(0.25, setup.LearningRateScales);
            int group = setup.GroupParameterNames.Select((names, i) => (names, i)).First(g => g.names.Contains("patch_embed.backbone.conv1.weight")).i;
            Assert.Equal(0.25, setup.LearningRateScales[group]);
        }

        var before = Snapshot(method.Model, HybridEmbed.BackbonePrefix);
        var losses = new List<float>();
        new Trainer(Options(20), dir.File("run")) { StepCompleted = s => losses.Add(s.Loss) }.Run(method, FixedBatch(6));
        var after = Snapshot(method.Model, HybridEmbed.BackbonePrefix);
        Assert.False(before["patch_embed.backbone.conv1.weight"].AsSpan().SequenceEqual(after["patch_embed.backbone.conv1.weight"]));
        foreach (var key in before.Keys.Where(k => k.Contains("running_", StringComparison.Ordinal) || k.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
            Assert.True(before[key].AsSpan().SequenceEqual(after[key]), $"{key} changed");
        Assert.True(losses[^1] < 0.7f * losses[0], $"loss {losses[0]} → {losses[^1]}");
    }

    [Theory]
    [InlineData("mctformer-v1")]
    [InlineData("mctformer-v2")]
    [InlineData("weaktr")]
    [InlineData("vit-cls")]
    [InlineData("cam")]
    public void Every_class_token_method_runs_on_the_hybrid_stem_from_its_json_config(string name)
    {
        var factory = MethodRegistry.Get(name);
        var json = factory.ConfigToJson(factory.DefaultConfig(MethodPreset.Cpu).WithNumClasses(3));
        json["backbone"]!["stem"] = "resnet18-s8";
        var config = factory.ConfigFromJson(json, "test");
        Assert.Equal(VitStem.ResNet18Stride8, config.BackboneConfig!.Stem);
        Assert.Contains("\"stem\": \"resnet18-s8\"", factory.ConfigToJson(config).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));

        torch.manual_seed(2);
        using var method = factory.Create(config);
        method.Model.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var images = torch.randn(1, 3, 96, 96);
        foreach (var kind in factory.Maps.Supported)
        {
            var maps = method.PatchGridMaps(images, kind);
            Assert.Equal(12, maps.shape[^1]);   // 96 / 8 tokens per side
            Assert.Equal(12, maps.shape[^2]);
            Assert.True(maps.isfinite().all().item<bool>());
        }
    }
}
