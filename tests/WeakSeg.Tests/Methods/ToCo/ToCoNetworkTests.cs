using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.ToCo;

/// <summary>The ToCo network and multi_scale_cam2 against the official code (toco_multi_scale_cam2), and training behaviour.</summary>
[Collection("Torch")]
public class ToCoNetworkTests
{
    internal static ToCoConfig TinyConfig(int classes = 4) => new()
    {
        NumClasses = classes,
        Backbone = new VitConfig
        {
            ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 4, NumHeads = 4, DropPathRate = 0.0,
            PositionEmbeddingResize = PositionEmbeddingResize.BicubicSize,
        },
        AuxLayer = -3,
        DecoderWidth = 16,
        CropSize = 32,
        CamScales = [1.0, 0.5, 1.5],
        UseCtc = false,                  // the paper's class-token contrast has its own tests (ToCoClassContrastTests)
    };

    [Fact]
    public void Forward_and_multi_scale_cam_match_the_reference_with_official_key_names()
    {
        var io = ToCoLabelFixtureTests.Case("toco_multi_scale_cam2");
        using var scope = torch.NewDisposeScope();
        using var network = new ToCoNetwork(TinyConfig());
        var report = TimmWeightImport.LoadFile(network, TestPaths.Fixture("single_stage", "toco_multi_scale_cam2.weights.safetensors"));
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Skipped);
        Assert.Equal(56, report.Loaded.Count);
        Assert.All(report.Missing, k => Assert.StartsWith("decoder.", k));   // the fixture leaves out the 512-wide decoder
        network.eval();
        using var noGrad = torch.no_grad();

        var inputs = io.ToTorch("inputs");
        var (features, block) = network.Encoder.ForwardFeaturesWithBlock(inputs, -3);
        TensorAssert.Close(io.ToTorch("ff_cls_token"), features.ClassTokens.select(1, 0), 1e-4, "ff_cls_token");
        TensorAssert.Close(io.ToTorch("ff_patch_tokens"), features.PatchTokens, 1e-4, "ff_patch_tokens");
        TensorAssert.Close(io.ToTorch("ff_aux_tokens"), block.narrow(1, 1, 16), 1e-4, "ff_aux_tokens");

        using var output = network.call(inputs);
        TensorAssert.Close(io.ToTorch("cls_x4"), output.ClassLogits, 1e-4, "cls_x4");
        TensorAssert.Close(io.ToTorch("cls_aux"), output.AuxLogits, 1e-4, "cls_aux");
        TensorAssert.Close(io.ToTorch("fmap"), output.FeatureMap, 1e-4, "fmap");
        Assert.Equal(new long[] { 2, 5, 4, 4 }, output.Segmentation.shape);

        var (s1Cam, s1Aux) = network.CamOnly(torch.cat(new[] { inputs, inputs.flip(-1) }, 0));
        TensorAssert.Close(io.ToTorch("s1_cam"), s1Cam, 1e-4, "s1_cam");
        TensorAssert.Close(io.ToTorch("s1_cam_aux"), s1Aux, 1e-4, "s1_cam_aux");

        var (cam, camAux) = ToCoMaps.MultiScaleCam(network, inputs, [1.0, 0.5, 1.5]);
        TensorAssert.Close(io.ToTorch("cam"), cam, 1e-4, "cam");
        TensorAssert.Close(io.ToTorch("cam_aux"), camAux, 1e-4, "cam_aux");
    }

    internal static TrainBatch RandomBatch(int classes, long seed)
    {
        using var generator = new torch.Generator((ulong)seed);
        var images = torch.randn(new long[] { 4, 3, 32, 32 }, generator: generator);
        var labels = torch.zeros(4, classes);
        for (int i = 0; i < 4; i++) { labels[i, i % classes] = 1f; labels[i, (i + 1) % classes] = i % 2 == 0 ? 1f : 0f; }
        return new TrainBatch(images, labels);
    }

    [Fact]
    public void Every_parameter_gets_a_gradient_once_segmentation_starts()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(0);
        var config = TinyConfig(3) with { Segmentation = new LossWeight(0.1, 5) };
        using var network = new ToCoNetwork(config);
        var trainable = new ToCoTrainable(network);
        network.train();
        var batch = RandomBatch(3, 1);

        var early = trainable.ComputeLoss(batch, new TrainStepContext(4, 10, 1e-3, new Random(1)));
        Assert.Equal(new[] { "cls", "cls_aux", "ptc" }, early.Parts.Select(p => p.Name));

        network.zero_grad();
        var terms = trainable.ComputeLoss(batch, new TrainStepContext(5, 10, 1e-3, new Random(1)));
        Assert.Equal(new[] { "cls", "cls_aux", "ptc", "seg", "seg_skipped" }, terms.Parts.Select(p => p.Name));
        terms.Total.backward();
        foreach (var (name, p) in network.named_parameters())
        {
            Assert.True(p.grad is not null, $"{name} has no gradient");
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name} has an all-zero gradient");
        }
        Assert.Equal(10.0, trainable.LearningRateScale("decoder.conv6.weight"));
        Assert.Equal(10.0, trainable.LearningRateScale("aux_classifier.weight"));
        Assert.Equal(1.0, trainable.LearningRateScale("encoder.blocks.0.attn.qkv.weight"));
    }

    [Fact]
    public void A_few_trainer_steps_on_tiny_random_data_lower_the_loss()
    {
        torch.manual_seed(0);
        var config = TinyConfig(3) with { Segmentation = new LossWeight(0.1, 0), LearningRate = 1e-3, WarmupSteps = 0, Steps = 12, BatchSize = 4 };
        using var network = new ToCoNetwork(config);
        using var dir = TestPaths.NewTempDir();
        var losses = new List<float>();
        var options = config.ToTrainerOptions(new TrainerOptions { CheckpointEvery = 100, LogEvery = 1, Seed = 0 });
        Assert.Equal(ScheduleKind.PolyFromStart, options.Schedule);
        var trainer = new Trainer(options, dir.File("run")) { StepCompleted = r => losses.Add(r.Loss) };
        var result = trainer.Run(new ToCoTrainable(network), new DelegateBatchStream(start => Forever(() => RandomBatch(3, 7))));
        Assert.True(result.Completed);
        Assert.Equal(12, losses.Count);
        Assert.True(losses.Skip(10).Average() < 0.8 * losses.Take(2).Average(), $"losses: {string.Join(", ", losses)}");
    }

    static IEnumerable<TrainBatch> Forever(Func<TrainBatch> make)
    {
        while (true) yield return make();
    }

    [Fact]
    public void A_batch_without_foreground_skips_the_reference_segmentation_term_instead_of_poisoning_the_step()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(0);
        var config = TinyConfig(3) with { Segmentation = new LossWeight(0.1, 0) };
        using var network = new ToCoNetwork(config);
        var batch = RandomBatch(3, 2) with { Labels = torch.zeros(4, 3) };   // no class → refined labels are all background
        var context = new TrainStepContext(0, 10, 1e-3, new Random(1));

        var skipped = new ToCoTrainable(network).ComputeLoss(batch, context);
        Assert.True(float.IsFinite(skipped.Total.item<float>()));
        Assert.Equal(1f, skipped.Parts.Single(p => p.Name == "seg_skipped").Value.item<float>());
        Assert.DoesNotContain(skipped.Parts, p => p.Name == "seg");

        using var reference = new ToCoNetwork(config with { SkipSegmentationWithoutBackgroundOrForeground = false });
        var poisoned = new ToCoTrainable(reference).ComputeLoss(batch, context);
        Assert.True(float.IsNaN(poisoned.Total.item<float>()), "the reference formula gives NaN");

        using var masked = new ToCoNetwork(config with { SegmentationReduction = SegmentationLossReduction.CountEpsilon });
        var finite = new ToCoTrainable(masked).ComputeLoss(batch, context);
        Assert.True(float.IsFinite(finite.Parts.Single(p => p.Name == "seg").Value.item<float>()));
    }

    [Fact]
    public void Poly_from_start_schedule_matches_PolyWarmupAdamW()
    {
        var options = (ToCoConfig.Paper with { Steps = 100, WarmupSteps = 10 }).ToTrainerOptions();
        var schedule = LearningRateSchedule.For(options);
        for (int s = 0; s < 100; s++)
        {
            // ToCo utils/optimizer.py: warm-up multiplier 1 − (1 − s/W)(1 − 1e-6), then (1 − s/T)^0.9 with s from 0.
            double multiplier = s < 10 ? 1 - (1 - s / 10.0) * (1 - 1e-6) : Math.Pow(1 - s / 100.0, 0.9);
            Assert.True(Math.Abs(schedule[s] - 6e-5 * multiplier) < 1e-15, $"step {s}: {schedule[s]} vs {6e-5 * multiplier}");
        }
        Assert.Equal(0.01, options.WeightDecay);
        Assert.Empty(options.NoWeightDecayNames);
        Assert.True(options.DecayAllParameters);
    }

    [Fact]
    public void Optimizer_groups_decay_every_parameter_and_give_the_heads_ten_times_the_rate()
    {
        using var network = new ToCoNetwork(TinyConfig());
        ITrainable trainable = new ToCoTrainable(network);
        var options = TinyConfig().ToTrainerOptions();
        using var setup = ParameterGroups.Create(trainable.TrainableParameters(), options, trainable.LearningRateScale);
        Assert.All(setup.WeightDecays, wd => Assert.Equal(0.01, wd));                 // biases and norm weights included, as the reference
        Assert.Equal(new[] { 1.0, 10.0 }, setup.LearningRateScales);
        Assert.Contains("encoder.norm.bias", setup.GroupParameterNames[0]);
        Assert.Equal(new[] { "classifier.weight", "aux_classifier.weight", "decoder.conv6.weight", "decoder.conv7.weight", "decoder.conv8.weight" },
            setup.GroupParameterNames[1]);
        var usual = ParameterGroups.Create(trainable.TrainableParameters(), options with { DecayAllParameters = false }, trainable.LearningRateScale);
        Assert.Contains(0.0, usual.WeightDecays);
        usual.Dispose();
    }
}

/// <summary>Preset sanity: both presets validate and the paper values are the official ones.</summary>
public class ToCoPresetTests
{
    [Fact]
    public void Paper_and_cpu_presets_are_valid_and_keep_the_official_values()
    {
        ToCoConfig.Paper.WithNumClasses(20).EnsureValid();
        ToCoConfig.Cpu.WithNumClasses(10).EnsureValid();
        WeakSeg.Methods.MoRe.MoReConfig.Paper.WithNumClasses(20).EnsureValid();
        WeakSeg.Methods.MoRe.MoReConfig.Cpu.WithNumClasses(10).EnsureValid();
        var p = ToCoConfig.Paper;
        Assert.Equal((0.7, 0.25, 0.5), (p.HighThreshold, p.LowThreshold, p.BackgroundThreshold));
        Assert.Equal(new[] { 1.0, 0.5, 1.5 }, p.CamScales);
        Assert.Equal(new[] { 1, 2, 4, 8, 12, 24 }, p.Par.Dilations);
        Assert.Equal((10, 0.3, 0.01), (p.Par.Iterations, p.Par.W1, p.Par.W2));
        Assert.Equal(new LossWeight(0.2), p.PatchContrast);
        Assert.Equal(new LossWeight(0.1, 2001), p.Segmentation);
        Assert.Equal(0.0, p.Segmentation.At(2000));
        Assert.Equal(0.1, p.Segmentation.At(2001));
        var m = WeakSeg.Methods.MoRe.MoReConfig.Paper.WithNumClasses(20);
        Assert.Equal((0.3, 0.2, 0.1, 0.12), (m.PatchContrast.Weight, m.ConfidentRelation.Weight, m.UncertainRelation.Weight, m.Segmentation.Weight));
        Assert.Equal(24, m.BackboneConfig.NumClassTokens);
        var e = Assert.Throws<WeakSegException>(() => (m with { LateRelationThresholds = (0.3, 0.35) }).EnsureValid());
        Assert.Contains("LateRelationThresholds thresholds out of order: low (0.35) must be below high (0.3)", e.Message);
    }
}
