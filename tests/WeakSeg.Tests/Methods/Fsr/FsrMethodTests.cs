using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.Fsr;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.Fsr;

/// <summary>FSR's teacher, schedules, masking options, bad input, and the method through the generic training path.</summary>
[Collection("Torch")]
public class FsrMethodTests
{
    internal static FsrConfig TinyConfig(int classes = 3) => FsrConfig.Cpu with
    {
        NumClasses = classes,
        Backbone = FsrConfig.Cpu.Backbone with { ImageSize = 32, EmbedDim = 16, Depth = 2, NumHeads = 2 },
        AuxLayer = -2,
        CropSize = 32,
        DecoderWidth = 8,
        ProjectorHiddenDim = 16, ProjectorBottleneckDim = 8, ProjectorOutDim = 16,
        MaskBlockPatches = 2,
        RandomMaskingSteps = 1,
        Segmentation = new LossWeight(0.1, 1),
    };

    static Dictionary<string, float[]> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32).data<float>().ToArray());

    [Fact]
    public void Teacher_starts_as_the_student_and_follows_it_by_the_hand_computed_ema()
    {
        torch.manual_seed(5);
        using var model = new FsrModel(TinyConfig() with { ProjectorTeacherMomentum = 0.5 });
        var student0 = Snapshot(model.Student);
        var teacher0 = Snapshot(model.Teacher);
        Assert.Equal(student0.Keys, teacher0.Keys);
        foreach (var (key, values) in student0) Assert.True(values.SequenceEqual(teacher0[key]), $"teacher {key} is not a copy");
        Assert.All(model.Teacher.parameters(), p => Assert.False(p.requires_grad));
        Assert.Contains("class_center", model.state_dict().Keys);
        Assert.Contains("patch_center", model.state_dict().Keys);
        Assert.Contains("teacher.encoder.mask_token", model.state_dict().Keys);

        using (torch.no_grad())
            foreach (var p in model.Student.parameters()) p.add_(torch.ones_like(p));          // student = teacher + 1
        model.UpdateTeacher(0.9, projectorMomentum: 0.5);
        var teacher1 = Snapshot(model.Teacher);
        Assert.Equal(teacher0.Keys, model.Teacher.named_parameters().Select(p => p.name));      // every state entry is a parameter
        foreach (var (key, before) in teacher0)
        {
            double m = key.StartsWith("projector.", StringComparison.Ordinal) ? 0.5 : 0.9;
            for (int i = 0; i < before.Length; i++)                                              // m·t + (1 − m)·(t + 1)
                Assert.Equal(m * before[i] + (1 - m) * (before[i] + 1.0), teacher1[key][i], 1e-5);
        }
    }

    [Fact]
    public void Pretrained_vit_weights_go_to_the_students_encoder_and_the_teacher()
    {
        using var dir = TestPaths.NewTempDir();
        var config = TinyConfig();
        torch.manual_seed(11);
        using var vit = new VisionTransformer(config.BackboneConfig);
        var checkpoint = dir.File("vit.safetensors");
        WeakSeg.Interop.SafetensorsFile.Write(checkpoint, vit.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
        using var method = new FsrMethod(config);
        var report = ((IWsssMethod)method).ImportTimmWeights(checkpoint);
        Assert.Contains("blocks.0.attn.qkv.weight", report.Loaded);
        Assert.Contains("cls_token", report.Loaded);
        Assert.Contains("mask_token", report.Missing);
        var state = method.Model.state_dict();
        foreach (var key in new[] { "blocks.1.mlp.fc2.weight", "cls_token", "pos_embed", "patch_embed.proj.weight", "norm.bias" })
        {
            var expected = vit.state_dict()[key].data<float>().ToArray();
            Assert.True(expected.SequenceEqual(state["student.encoder." + key].data<float>().ToArray()), $"student {key}");
            Assert.True(expected.SequenceEqual(state["teacher.encoder." + key].data<float>().ToArray()), $"teacher {key}");
        }
    }

    [Fact]
    public void Momentum_and_teacher_temperature_schedules_match_the_hand_computation()
    {
        // cosine_scheduler(0.9995, 1.0, T): 1 + ½(m₀ − 1)(1 + cos(π s / T)).
        Assert.Equal(0.9995, FsrLoss.TeacherMomentum(0, 20_000, 0.9995), 12);
        Assert.Equal((1 + 0.9995) / 2, FsrLoss.TeacherMomentum(10_000, 20_000, 0.9995), 12);
        Assert.Equal(1 + 0.5 * (0.9995 - 1) * (1 + Math.Cos(Math.PI * 19_999 / 20_000)), FsrLoss.TeacherMomentum(19_999, 20_000, 0.9995), 15);
        // np.linspace(0.04, 0.07, 2500)[s], then 0.07.
        Assert.Equal(0.04, FsrLoss.TeacherTemperature(0, 2500, 0.04, 0.07), 12);
        Assert.Equal(0.04 + 0.03 * 1000 / 2499, FsrLoss.TeacherTemperature(1000, 2500, 0.04, 0.07), 12);
        Assert.Equal(0.07, FsrLoss.TeacherTemperature(2499, 2500, 0.04, 0.07), 12);
        Assert.Equal(0.07, FsrLoss.TeacherTemperature(2500, 2500, 0.04, 0.07), 12);
        Assert.Equal(0.04, FsrConfig.Paper.TeacherTemperatureAt(0), 12);
    }

    [Fact]
    public void The_trainer_updates_the_teacher_after_the_optimizer_step()
    {
        using var dir = TestPaths.NewTempDir();
        torch.manual_seed(6);
        var config = TinyConfig();
        using var method = (FsrMethod)MethodRegistry.Get(FsrMethod.MethodName).Create(config);
        var student0 = Snapshot(method.FsrModel.Student);
        var options = config.ToTrainerOptions(new TrainerOptions { Threads = 2, CheckpointEvery = 10 }) with { Steps = 1, BatchSize = 2, WarmupSteps = 0 };
        var batches = new DelegateBatchStream(start => Endless(start));
        static IEnumerable<TrainBatch> Endless(long start)
        {
            for (long s = start; ; s++)
            {
                torch.manual_seed(100 + s);
                yield return new TrainBatch(torch.randn(2, 3, 32, 32), torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3));
            }
        }
        var result = new Trainer(options, dir.File("run")).Run(method, batches);
        Assert.True(result.Completed);
        var student1 = Snapshot(method.FsrModel.Student);
        var teacher1 = Snapshot(method.FsrModel.Teacher);
        double m = FsrLoss.TeacherMomentum(0, 1, config.TeacherMomentum);
        Assert.Equal(config.TeacherMomentum, m);
        int changed = 0;
        foreach (var (name, _) in method.FsrModel.Student.named_parameters())
        {
            var (s0, s1, t1) = (student0[name], student1[name], teacher1[name]);
            for (int i = 0; i < s0.Length; i++) Assert.Equal(m * s0[i] + (1 - m) * s1[i], t1[i], 1e-6);
            if (!s0.SequenceEqual(s1)) changed++;
        }
        Assert.True(changed > 10, $"the optimizer changed only {changed} student parameters");
        // The teacher trains nothing itself and is not in the optimizer.
        Assert.DoesNotContain(((ITrainable)method).TrainableParameters(), p => p.Name.StartsWith("teacher.", StringComparison.Ordinal));
        Assert.Equal(10.0, ((IWsssMethod)method).LearningRateScale("student.projector.mlp.0.weight"));
        Assert.Equal(10.0, ((IWsssMethod)method).LearningRateScale("student.top_classifier.weight"));
        Assert.Equal(1.0, ((IWsssMethod)method).LearningRateScale("student.encoder.mask_token"));
    }

    [Fact]
    public void A_step_trains_every_student_parameter_and_reports_its_parts()
    {
        torch.manual_seed(7);
        using var method = (FsrMethod)MethodRegistry.Get(FsrMethod.MethodName).Create(TinyConfig() with { AggregatorAttentionMask = true });
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
        method.Model.train();
        var terms = ((IWsssMethod)method).ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(1, 4, 1e-3, new Random(3)));
        Assert.Equal(["cls", "cls_aux", "ptc", "seg", "seg_skipped", "fsr_cls", "fsr_pat", "mask_ratio"], terms.Parts.Select(p => p.Name));
        Assert.Equal(0.5f, terms.Parts.Single(p => p.Name == "mask_ratio").Value.item<float>());     // ceil(0.4·4) = 2 of 4 blocks
        terms.Total.backward();
        var missing = ((ITrainable)method).TrainableParameters().Where(p => p.Parameter.grad is null).Select(p => p.Name).ToList();
        Assert.Empty(missing);
        Assert.All(method.FsrModel.Teacher.parameters(), p => Assert.Null(p.grad));
        // The centres moved off zero (EMA of the teacher outputs).
        Assert.True(method.FsrModel.ClassCenter.abs().sum().item<float>() > 0);
        Assert.True(method.FsrModel.PatchCenter.abs().sum().item<float>() > 0);
    }

    /// <summary>The masked set by brute force: per block the CAM pixel nearest interpolation reads, noise + band, the top ceil(r·M) masked.</summary>
    [Theory]
    [InlineData(1)]   // the paper: patch-level masking
    [InlineData(2)]   // the code: k×k-patch blocks
    [InlineData(4)]
    public void Masking_picks_the_top_scores_at_patch_and_block_granularity(int blockPatches)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(8);
        int grid = 8, patch = 4, size = grid * patch, blocksSide = grid / blockPatches, blocks = blocksSide * blocksSide;
        var cam = torch.rand(2, 3, size, size);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
        var noise = torch.rand(2, blocks);
        var options = new MaskOptions(0.4, blockPatches, 0.2, 0.7);
        var mask = FsrMasking.Generate(cam, labels, noise, MaskStrategy.Uncertain, options, grid, grid);
        var camData = cam.data<float>().ToArray();
        var labelData = labels.data<float>().ToArray();
        var noiseData = noise.data<float>().ToArray();
        var maskData = mask.data<bool>().ToArray();
        int masked = (int)Math.Ceiling(blocks * 0.4);
        for (int b = 0; b < 2; b++)
        {
            var scores = new double[blocks];
            for (int i = 0; i < blocksSide; i++)
                for (int j = 0; j < blocksSide; j++)
                {
                    int y = i * size / blocksSide, x = j * size / blocksSide;                     // nearest: floor(i · H / side)
                    double v = 0;
                    for (int c = 0; c < 3; c++) v = Math.Max(v, camData[((b * 3 + c) * size + y) * size + x] * labelData[b * 3 + c]);
                    scores[i * blocksSide + j] = noiseData[b * blocks + i * blocksSide + j] + (v > 0.2f && v < 0.7f ? 1 : 0);
                }
            var top = scores.Select((s, i) => (s, i)).OrderByDescending(p => p.s).Take(masked).Select(p => p.i).ToHashSet();
            for (int r = 0; r < grid; r++)
                for (int c = 0; c < grid; c++)
                {
                    int blockIndex = r / blockPatches * blocksSide + c / blockPatches;
                    Assert.Equal(top.Contains(blockIndex), maskData[(b * grid + r) * grid + c]);
                }
        }
    }

    [Fact]
    public void Papers_attention_mask_equals_attending_to_the_unmasked_tokens_only()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(9);
        using var block = new CrossAttentionBlock(16, 2, 4.0, qkvBias: true, eps: 1e-6);
        using var noGrad = torch.no_grad();
        var cls = torch.randn(1, 1, 16);
        var tokens = torch.randn(1, 6, 16);
        var masked = torch.tensor(new[] { false, true, false, true, true, false }).reshape(1, 6);
        var kept = torch.tensor(new long[] { 0, 2, 5 });
        TensorAssert.Close(block.call(cls, tokens.index_select(1, kept), null), block.call(cls, tokens, masked), 1e-5, "masked = restricted");
        Assert.True(block.call(cls, tokens, null).sub(block.call(cls, tokens, masked)).abs().max().item<float>() > 1e-4);
    }

    [Theory]
    [InlineData("MaskRatio must be in (0, 1) (got 1)", 1.0, 4, 0.2, 0.7)]
    [InlineData("MaskRatio must be in (0, 1) (got 0)", 0.0, 4, 0.2, 0.7)]
    [InlineData("MaskRatio must be in (0, 1) (got -0.1)", -0.1, 4, 0.2, 0.7)]
    [InlineData("MaskBlockPatches (5) must divide the 12×12 patch grid", 0.4, 5, 0.2, 0.7)]
    [InlineData("MaskRatio (0.4) with MaskBlockPatches (12) masks all 1 blocks of the 12×12 patch grid; at least one block must stay unmasked", 0.4, 12, 0.2, 0.7)]
    [InlineData("mask thresholds out of order: MaskLowThreshold (0.7) must be below MaskHighThreshold (0.2)", 0.4, 2, 0.7, 0.2)]
    public void Bad_masking_options_are_one_clear_error_naming_the_option(string expected, double ratio, int blockPatches, double low, double high)
    {
        var config = FsrConfig.Cpu with { MaskRatio = ratio, MaskBlockPatches = blockPatches, MaskLowThreshold = low, MaskHighThreshold = high };
        var e = Assert.Throws<WeakSegException>(() => config.EnsureValid());
        Assert.StartsWith("invalid FSR configuration: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        var m = Assert.Throws<WeakSegException>(() => FsrMasking.Generate(torch.zeros(1, 1, 96, 96), torch.ones(1, 1), torch.zeros(1, 9), MaskStrategy.Random,
            config.Masking, 12, 12));
        Assert.Contains(expected, m.Message);
        var thresholds = Assert.Throws<WeakSegException>(() => (FsrConfig.Cpu with { LowThreshold = 0.8 }).EnsureValid());
        Assert.Contains("thresholds out of order: LowThreshold (0.8) must be below HighThreshold (0.7)", thresholds.Message);
    }

    static TrainRecipe TinyRecipe(long steps) => TrainRecipe.Preset(FsrMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes).Overlay(new JsonObject
    {
        ["model"] = new JsonObject
        {
            ["backbone"] = new JsonObject { ["image_size"] = 32, ["patch_size"] = 8, ["embed_dim"] = 16, ["depth"] = 2, ["num_heads"] = 2 },
            ["crop_size"] = 32, ["decoder_width"] = 8, ["projector_hidden_dim"] = 16, ["projector_bottleneck_dim"] = 8, ["projector_out_dim"] = 16,
            ["random_masking_steps"] = 1, ["segmentation"] = new JsonObject { ["weight"] = 0.1, ["start_step"] = 1 },
        },
        ["trainer"] = new JsonObject { ["steps"] = steps, ["batch_size"] = 4, ["warmup_steps"] = 1, ["checkpoint_every"] = 2, ["log_every"] = 1, ["threads"] = 2 },
    }, "<test>");

    [Fact]
    public void Training_saves_the_teacher_and_resumes_exactly()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var a = TrainedRuns.AssertResumeIsExact(dir, data, TinyRecipe(steps: 4), stopAfter: 2);
        Assert.Contains("teacher.encoder.cls_blocks.0.attn.q.weight", a.Keys);
        Assert.Contains("patch_center", a.Keys);
        // The teacher moved with the student but is not the student.
        Assert.False(a["teacher.projector.mlp.0.weight"].SequenceEqual(a["student.projector.mlp.0.weight"]));
        Assert.Contains(a["patch_center"], v => v != 0);
    }

    [Fact]
    public void Config_round_trips_through_the_method_json()
    {
        var factory = MethodRegistry.Get(FsrMethod.MethodName);
        var config = FsrConfig.Paper with { MaskBlockPatches = 1, AggregatorAttentionMask = false, AggregatorLayerScale = 0.1, ProjectorTeacherMomentum = 0.996 };
        var json = factory.ConfigToJson(config).ToJsonString();
        var back = Assert.IsType<FsrConfig>(factory.ConfigFromJson(JsonNode.Parse(json)!, "fsr.json"));
        Assert.Equal(json, factory.ConfigToJson(back).ToJsonString());
        Assert.Equal(1, back.MaskBlockPatches);
        Assert.False(back.AggregatorAttentionMask);
        Assert.Equal(0.996, back.ProjectorTeacherMomentum);
        var bad = JsonNode.Parse(factory.ConfigToJson(FsrConfig.Cpu with { }).ToJsonString())!.AsObject();
        bad["mask_ratio"] = 1.5;
        var e = Assert.Throws<WeakSegException>(() => factory.Create(factory.ConfigFromJson(bad, "bad.json")));
        Assert.Contains("MaskRatio must be in (0, 1) (got 1.5)", e.Message);
    }

    [Fact]
    public void Paper_and_cpu_presets_hold_the_reference_values()
    {
        var paper = FsrConfig.Paper;
        Assert.Equal(0.4, paper.MaskRatio);
        Assert.Equal(4, paper.MaskBlockPatches);                // 64-px blocks at patch 16 (the code)
        Assert.True(paper.AggregatorAttentionMask);             // Eq. 7 (the paper)
        Assert.Null(paper.AggregatorLayerScale);
        Assert.Equal(4000, paper.RandomMaskingSteps);
        Assert.Equal(2500, paper.TeacherTemperatureWarmupSteps);
        Assert.Equal(0.9995, paper.TeacherMomentum);
        Assert.Equal((0.1, 0.1, 0.2, 0.1), (paper.CertainDistillation.Weight, paper.UncertainDistillation.Weight, paper.PatchContrast.Weight, paper.Segmentation.Weight));
        Assert.Equal(2000, paper.Segmentation.StartStep);
        Assert.Equal((2048, 256, 4096), (paper.ProjectorHiddenDim, paper.ProjectorBottleneckDim, paper.ProjectorOutDim));
        var options = paper.ToTrainerOptions();
        Assert.Equal(ScheduleKind.WarmupCosine, options.Schedule);
        Assert.Equal(6e-6, options.WarmupStartLr, 12);
        Assert.Equal(["pos_embed", "cls_token", "mask_token"], options.NoWeightDecayNames);
        Assert.Equal([MethodConfigChecks.UnboundClassCount], FsrConfig.Cpu.Validate());         // K comes from the dataset
        Assert.Empty(FsrConfig.Cpu.WithNumClasses(20).Validate());
        Assert.Empty(paper.WithNumClasses(20).Validate());
    }
}
