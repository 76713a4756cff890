using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.ToCo;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.ToCo;

/// <summary>ToCo's class-token contrast in training: region map, local crops, projection heads and their EMA, the loss part, resume.</summary>
[Collection("Torch")]
public class ToCoClassContrastTests
{
    /// <summary>A tiny ToCo with CTC on: 32 px crops, patch 8, 3 local crops of 8 px, a small projection head.</summary>
    internal static ToCoConfig TinyCtcConfig(int classes = 3) => ToCoNetworkTests.TinyConfig(classes) with
    {
        UseCtc = true,
        LocalCropCount = 3,
        LocalCropSize = 8,
        ProjectorHiddenDim = 48,
        ProjectorBottleneckDim = 16,
        ProjectorOutDim = 64,
    };

    /// <summary>Images whose channel 0 holds the row index and channel 1 the column index of each pixel (channel 2 zero).</summary>
    static Tensor CoordinateImages(int batch, int size)
    {
        var rows = torch.arange(size, dtype: ScalarType.Float32).reshape(1, 1, size, 1).expand(batch, 1, size, size);
        var cols = torch.arange(size, dtype: ScalarType.Float32).reshape(1, 1, 1, size).expand(batch, 1, size, size);
        return torch.cat(new[] { rows, cols, torch.zeros(batch, 1, size, size) }, 1).contiguous();
    }

    /// <summary>(top, left) of a crop of <see cref="CoordinateImages"/>, read off its first pixel, after checking every pixel of it.</summary>
    static (long Top, long Left) CropOrigin(Tensor crop, int size, bool mirrored = false, int imageSize = 0)
    {
        var values = crop.data<float>().ToArray();                                         // [3, s, s]
        long top = (long)values[0];
        long firstCol = (long)values[size * size];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < size; c++)
            {
                Assert.Equal((float)(top + r), values[r * size + c]);
                long expectedCol = mirrored ? firstCol - c : firstCol + c;
                Assert.Equal((float)expectedCol, values[size * size + r * size + c]);
            }
        long left = mirrored ? imageSize - 1 - firstCol : firstCol;                         // column in the mirrored image
        return (top, left);
    }

    [Fact]
    public void Region_map_has_three_levels_from_the_label_restricted_aux_cam()
    {
        using var scope = torch.NewDisposeScope();
        // class 0 present, class 1 absent (its high values must not count)
        var cam = torch.tensor(new float[]
        {
            0.10f, 0.25f, 0.26f, 0.69f, 0.70f, 0.90f,
            0.95f, 0.95f, 0.95f, 0.95f, 0.95f, 0.95f,
        }).reshape(1, 2, 1, 6);
        var labels = torch.tensor(new float[] { 1, 0 }).reshape(1, 2);
        var region = LocalCrops.RegionOfInterest(cam, labels, 0.25, 0.7);
        Assert.Equal(new long[] { 0, 0, 1, 1, 2, 2 }, region.data<long>().ToArray());      // ≤ low → 0, ≥ high → 2
        var e = Assert.Throws<WeakSegException>(() => LocalCrops.RegionOfInterest(cam, labels, 0.7, 0.25));
        Assert.Contains("low (0.7) must be below high (0.25)", e.Message);
    }

    [Fact]
    public void Local_crops_are_centred_on_allowed_interior_pixels_with_hand_computed_flags()
    {
        using var scope = torch.NewDisposeScope();
        const int size = 12, crop = 4;                                                     // margin 2: centres in rows/cols 2..9
        var images = CoordinateImages(2, size);
        var region = torch.full(new long[] { 2, size, size }, 2L, dtype: ScalarType.Int64);
        // image 0: a 4×4 background block in the corner, one uncertain pixel, one background pixel outside the interior
        region[0, TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 4)] = torch.tensor(0L);
        region[0, 7, 8] = torch.tensor(1L);
        region[0, 0, 5] = torch.tensor(0L);
        // image 1: confident everywhere → fewer allowed pixels than crops → any interior pixel
        var crops = LocalCrops.Crop(images, region, count: 5, size: crop, negativeMeanRegion: 0.2, new Random(3));
        Assert.Equal(new long[] { 10, 3, crop, crop }, crops.Crops.shape);
        Assert.Equal(new long[] { 2, 7 }, crops.Flags.shape);
        var flags = crops.Flags.data<float>().ToArray();

        // Hand-computed flags of image 0's five allowed centres (mean region over the 4×4 crop rows c−2..c+1, cols c−2..c+1):
        //   (2,2): all 0 → 0 → negative; (2,3), (3,2): 8/16 = 0.5; (3,3): 14/16; (7,8): 31/16.
        var expected = new Dictionary<(long, long), float> { [(2, 2)] = 0f, [(2, 3)] = 1f, [(3, 2)] = 1f, [(3, 3)] = 1f, [(7, 8)] = 1f };
        var seen = new HashSet<(long, long)>();
        for (int k = 0; k < 5; k++)
        {
            var (top, left) = CropOrigin(crops.Crops[k * 2 + 0], crop);                    // view-major: row k·B + i
            var centre = (top + 2, left + 2);
            Assert.True(expected.ContainsKey(centre), $"crop {k} of image 0 is centred on {centre}, not an allowed pixel");
            Assert.True(seen.Add(centre), $"centre {centre} drawn twice");
            Assert.Equal(expected[centre], flags[k + 2]);
        }
        Assert.Equal(1f, flags[0]);
        Assert.Equal(1f, flags[1]);                                                         // the two global views

        var seen1 = new HashSet<(long, long)>();
        for (int k = 0; k < 5; k++)
        {
            var (top, left) = CropOrigin(crops.Crops[k * 2 + 1], crop);
            Assert.InRange(top + 2, 2, 9);
            Assert.InRange(left + 2, 2, 9);
            Assert.True(seen1.Add((top, left)));
            Assert.Equal(1f, flags[7 + k + 2]);                                             // mean region 2
        }

        // The same generator state gives the same crops (a resumed step repeats them).
        var again = LocalCrops.Crop(images, region, 5, crop, 0.2, new Random(3));
        Assert.True(again.Crops.eq(crops.Crops).all().item<bool>());
        Assert.True(again.Flags.eq(crops.Flags).all().item<bool>());

        var bad = Assert.Throws<WeakSegException>(() => LocalCrops.Crop(images, region, 65, crop, 0.2, new Random(0)));
        Assert.Contains("65 local crops of 4×4 need at least 65 interior pixels in a 12×12 image (margin 2); got 64", bad.Message);
    }

    [Fact]
    public void The_local_source_flips_independently_by_default_and_not_with_the_corrected_option()
    {
        using var scope = torch.NewDisposeScope();
        const int size = 32;
        var config = TinyCtcConfig() with
        {
            LocalCropCount = 2, LocalCropSize = 8,
            LocalView = new RandomViewOptions { MinAreaScale = 1, MinAspectRatio = 1, MaxAspectRatio = 1, HorizontalFlipProbability = 1, ColorJitterProbability = 0 },
        };
        var images = CoordinateImages(1, size);
        // aux CAM: class 0 confident (2) everywhere except an uncertain band in columns 4..7
        var auxCam = torch.full(new long[] { 1, 3, size, size }, 0.9f);
        auxCam[0, 0, TensorIndex.Colon, TensorIndex.Slice(4, 8)] = torch.tensor(0.5f);
        var labels = torch.tensor(new float[] { 1, 0, 0 }).reshape(1, 3);

        var reference = ToCoTraining.ClassContrastLocalCrops(config, images, auxCam, labels, new Random(1));
        for (int k = 0; k < 2; k++)
        {
            var (_, left) = CropOrigin(reference.Crops[k], 8, mirrored: true, imageSize: size);
            Assert.InRange(left + 4, 4, 7);                  // placed on the band of the region map, but cut from the mirror image
        }
        var corrected = ToCoTraining.ClassContrastLocalCrops(config with { LocalViewFlipsIndependently = false }, images, auxCam, labels, new Random(1));
        for (int k = 0; k < 2; k++)
        {
            var (_, left) = CropOrigin(corrected.Crops[k], 8);
            Assert.InRange(left + 4, 4, 7);                  // the crop covers the band it was placed on
        }
    }

    [Fact]
    public void Projection_head_keeps_the_reference_keys_and_matches_the_dino_head_fixture()
    {
        var io = ToCoLabelFixtureTests.Case("fsr_dino_head");                                // ToCo's CTCHead is this module (out 1024)
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        using var network = new ToCoNetwork(TinyCtcConfig());
        var keys = network.state_dict().Keys.ToList();
        Assert.Contains("proj_head.mlp.0.weight", keys);
        Assert.Contains("proj_head.last_layer.weight_v", keys);
        Assert.Contains("proj_head_t.last_layer.weight_g", keys);
        var head = network.Projector!;
        var teacherHead = network.TeacherProjector!;
        foreach (var (s, t) in head.parameters().Zip(teacherHead.parameters()))
            Assert.True(s.eq(t).all().item<bool>(), "the teacher head starts as a copy of the student head");
        Assert.All(teacherHead.parameters(), p => Assert.False(p.requires_grad));
        ITrainable trainable = new ToCoTrainable(network);
        var trained = trainable.TrainableParameters().Select(p => p.Name).ToList();
        Assert.Contains("proj_head.mlp.0.weight", trained);
        Assert.DoesNotContain(trained, n => n.StartsWith("proj_head_t.", StringComparison.Ordinal));
        Assert.Equal(10.0, trainable.LearningRateScale("proj_head.mlp.0.weight"));         // in the reference's 10× group

        var weights = SafetensorsFixture("fsr_dino_head.weights");
        var state = network.state_dict();
        using (torch.no_grad())
            foreach (var (name, value) in weights) state["proj_head." + name].copy_(value);
        using var noGrad = torch.no_grad();
        TensorAssert.Close(io.ToTorch("out"), head.call(io.ToTorch("x")), 1e-4, "proj_head out");

        using var plain = new ToCoNetwork(TinyCtcConfig() with { UseCtc = false });
        Assert.DoesNotContain(plain.state_dict().Keys, k => k.StartsWith("proj_head", StringComparison.Ordinal));
        Assert.Null(plain.Projector);
    }

    static Dictionary<string, Tensor> SafetensorsFixture(string name) =>
        WeakSeg.Interop.SafetensorsFile.Read(TestPaths.Fixture("single_stage", name + ".safetensors")).ToTorchDictionary();

    static Dictionary<string, float[]> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32).data<float>().ToArray());

    [Fact]
    public void The_ctc_part_appears_with_use_ctc_and_the_teacher_head_takes_one_ema_step_before_it()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(0);
        var config = TinyCtcConfig();
        using var network = new ToCoNetwork(config);
        var trainable = new ToCoTrainable(network);
        network.train();
        var batch = ToCoNetworkTests.RandomBatch(3, 1);

        var head = network.Projector!;
        var teacherHead = network.TeacherProjector!;
        // student head = teacher head + 0.01: the step's EMA must leave the teacher at 0.9·t + 0.1·(t + 0.01) = t + 0.001
        var teacher0 = Snapshot(teacherHead);
        using (torch.no_grad())
            foreach (var p in head.parameters()) p.add_(torch.full_like(p, 0.01f));
        network.zero_grad();
        var terms = trainable.ComputeLoss(batch, new TrainStepContext(0, 10, 1e-3, new Random(4)));
        Assert.Equal(new[] { "cls", "cls_aux", "ptc", "ctc" }, terms.Parts.Select(p => p.Name));
        var teacher1 = Snapshot(teacherHead);
        foreach (var (key, before) in teacher0)
            for (int i = 0; i < before.Length; i++)
                Assert.Equal(before[i] + 0.001, teacher1[key][i], 1e-6);

        var part = terms.Parts.ToDictionary(p => p.Name, p => (double)p.Value.item<float>());
        Assert.True(part["ctc"] > 0 && double.IsFinite(part["ctc"]), $"ctc = {part["ctc"]}");
        double expected = part["cls"] + part["cls_aux"] + 0.2 * part["ptc"] + 0.5 * part["ctc"];
        Assert.Equal(expected, terms.Total.item<float>(), 1e-4);

        terms.Total.backward();
        foreach (var (name, p) in head.named_parameters().Where(p => p.parameter.requires_grad))
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"proj_head.{name} has no gradient");
        Assert.All(teacherHead.parameters(), p => Assert.True(p.grad is null));

        using var plain = new ToCoNetwork(config with { UseCtc = false });
        var without = new ToCoTrainable(plain).ComputeLoss(batch, new TrainStepContext(0, 10, 1e-3, new Random(4)));
        Assert.Equal(new[] { "cls", "cls_aux", "ptc" }, without.Parts.Select(p => p.Name));

        using var late = new ToCoNetwork(config with { ClassContrast = new LossWeight(0.5, 3) });
        var early = new ToCoTrainable(late).ComputeLoss(batch, new TrainStepContext(2, 10, 1e-3, new Random(4)));
        Assert.DoesNotContain(early.Parts, p => p.Name == "ctc");
    }

    [Fact]
    public void The_ctc_term_is_the_reference_loss_of_the_projected_class_tokens()
    {
        // Views that change nothing (whole crop, no flip, no jitter): v1 = v0, so the term can be rebuilt by hand from the class
        // tokens, the crops drawn with the same generator state and the fixture-tested loss.
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var identity = new RandomViewOptions { MinAreaScale = 1, MinAspectRatio = 1, MaxAspectRatio = 1, HorizontalFlipProbability = 0, ColorJitterProbability = 0 };
        var config = TinyCtcConfig() with { GlobalView = identity, LocalView = identity };
        using var network = new ToCoNetwork(config);
        network.eval();
        var batch = ToCoNetworkTests.RandomBatch(3, 5);
        var (_, auxCam) = ToCoMaps.MultiScaleCam(network, batch.Images, config.CamScales);
        using var noGrad = torch.no_grad();
        var classToken = network.ClassToken(batch.Images);

        var random = new Random(9);
        var term = ToCoTraining.ClassContrastTerm(network, batch.Images, auxCam, batch.Labels, classToken, random);

        var replay = new Random(9);
        RandomViews.View(batch.Images, replay, identity).Dispose();
        var crops = ToCoTraining.ClassContrastLocalCrops(config, batch.Images, auxCam, batch.Labels, replay);
        var globals = torch.cat(new[] { classToken, classToken }, 0);
        var student = network.Projector!.call(torch.cat(new[] { globals, network.ClassToken(crops.Crops) }, 0));
        var teacher = network.TeacherProjector!.call(globals);
        var expected = ToCoLoss.ClassTokenContrast(student, teacher, crops.Flags, 0.5);
        Assert.Equal(expected.item<float>(), term.item<float>(), 1e-5);
    }

    [Fact]
    public void Presets_keep_the_official_ctc_values_and_bad_crop_settings_are_named()
    {
        var p = ToCoConfig.Paper with { NumClasses = 20 };                          // a bound preset (the dataset gives K)
        Assert.True(p.UseCtc);
        Assert.Equal(new LossWeight(0.5), p.ClassContrast);
        Assert.Equal((0.5, 0.9), (p.ClassContrastTemperature, p.ProjectorTeacherMomentum));
        Assert.Equal((8, 96, 0.2), (p.LocalCropCount, p.LocalCropSize, p.NegativeCropMeanRegion));
        Assert.Equal((2048, 256, 1024), (p.ProjectorHiddenDim, p.ProjectorBottleneckDim, p.ProjectorOutDim));
        Assert.Equal((0.4, 0.8), (p.GlobalView.MinAreaScale, p.GlobalView.ColorJitterProbability));
        Assert.Equal(CtcLossVariant.Reference, p.ClassContrastVariant);
        Assert.True(p.LocalViewFlipsIndependently);
        Assert.False(ToCoConfig.Cpu.UseCtc);
        (ToCoConfig.Cpu with { UseCtc = true, NumClasses = 20 }).EnsureValid();

        // Other input sides keep the local crops' share of the crop (96 of 448), in whole patches.
        Assert.Equal(96, p.LocalCropSizeFor(448));
        Assert.Equal(16, p.LocalCropSizeFor(96));                                           // 96·96/448 = 20.6 → one 16-px patch
        Assert.Equal(16, (p with { Backbone = p.Backbone with { PatchSize = 8 } }).LocalCropSizeFor(96));
        var small = p.WithImageSize(224);
        Assert.Equal((224, 48), (small.CropSize, small.LocalCropSize));
        small.EnsureValid();
        Assert.Equal(8, (ToCoConfig.Cpu with { UseCtc = true }).WithImageSize(32).LocalCropSize);

        var big = Assert.Throws<WeakSegException>(() => (TinyCtcConfig() with { LocalCropSize = 32 }).EnsureValid());
        Assert.Contains("LocalCropSize must be at least the patch size 8 and below CropSize 32 (got 32)", big.Message);
        var many = Assert.Throws<WeakSegException>(() => (TinyCtcConfig() with { LocalCropSize = 30, LocalCropCount = 5 }).EnsureValid());
        Assert.Contains("LocalCropCount 5 exceeds the 4 pixels a 30-pixel crop can be centred on in a 32 crop", many.Message);
        var temperature = Assert.Throws<WeakSegException>(() => (TinyCtcConfig() with { ClassContrastTemperature = 0 }).EnsureValid());
        Assert.Contains("ClassContrastTemperature must be a positive number (got 0)", temperature.Message);
        (TinyCtcConfig() with { UseCtc = false, LocalCropSize = 32 }).EnsureValid();        // CTC settings are not checked when it is off
    }

    static TrainRecipe TinyRecipe(long steps) => TrainRecipe.Preset(ToCoMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes).Overlay(new JsonObject
    {
        ["model"] = new JsonObject
        {
            ["backbone"] = new JsonObject { ["image_size"] = 32, ["patch_size"] = 8, ["embed_dim"] = 16, ["depth"] = 2, ["num_heads"] = 2 },
            ["crop_size"] = 32, ["decoder_width"] = 8, ["use_ctc"] = true, ["local_crop_size"] = 8, ["local_crop_count"] = 4,
            ["projector_hidden_dim"] = 16, ["projector_bottleneck_dim"] = 8, ["projector_out_dim"] = 16,
            ["segmentation"] = new JsonObject { ["weight"] = 0.1, ["start_step"] = 1 },
        },
        ["trainer"] = new JsonObject { ["steps"] = steps, ["batch_size"] = 4, ["warmup_steps"] = 1, ["checkpoint_every"] = 2, ["log_every"] = 1, ["threads"] = 2 },
    }, "<test>");

    [Fact]
    public void Training_with_ctc_saves_the_teacher_head_and_resumes_exactly()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var a = TrainedRuns.AssertResumeIsExact(dir, data, TinyRecipe(steps: 4), stopAfter: 2);
        Assert.Contains("proj_head_t.mlp.0.weight", a.Keys);
        // The teacher head moved with the student head but is not the student head.
        Assert.False(a["proj_head_t.mlp.0.weight"].SequenceEqual(a["proj_head.mlp.0.weight"]));
    }
}
