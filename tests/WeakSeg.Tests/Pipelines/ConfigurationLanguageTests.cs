using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.Methods.CamResNet;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Pipelines;

/// <summary>One configuration language: K only from the dataset, the preset table, one JSON contract, one name per small ViT.</summary>
[Collection("Torch")]
public class ConfigurationLanguageTests
{
    // ---- the class count comes only from the dataset ----

    [Fact]
    public void Presets_carry_no_class_count_and_do_not_build()
    {
        foreach (var name in MethodRegistry.Names)
            foreach (var preset in Enum.GetValues<MethodPreset>())
            {
                if (PaperNeedsUserWeights(name, preset)) continue;
                var recipe = TrainRecipe.Preset(name, preset);
                Assert.False(recipe.HasClassCount, $"{name} {preset}");
                Assert.Equal(0, recipe.ModelConfig.NumClasses);
                var e = Assert.Throws<WeakSegException>(() => recipe.Factory.Create(recipe.ModelConfig));
                Assert.Contains(MethodConfigChecks.UnboundClassCount, e.Message);
            }
        Assert.Equal(0, SegmentationConfig.Cpu.NumClasses);
        Assert.Equal(0, SegmentationConfig.Paper.NumClasses);
        Assert.Contains(SegmentationConfig.UnboundClassCount, Assert.Throws<WeakSegException>(() => SegmentationConfig.Cpu.EnsureValid()).Message);
    }

    [Fact]
    public void A_recipe_takes_the_datasets_class_count_and_refuses_another_one()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var dataset = WeakSeg.Data.VocDataset.Open(data, "train");
        var bound = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).For(dataset);
        Assert.Equal(3, bound.ModelConfig.NumClasses);
        Assert.Equal(3, ((MctFormerConfig)bound.ModelConfig).BackboneConfig.NumClassTokens);
        Assert.Equal(bound.ToJson().ToJsonString(), bound.For(dataset).ToJson().ToJsonString());   // binding again to the same data: no change
        // A class count written in a configuration that differs from the data is an error naming both, not silently replaced.
        var five = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).With("model.num_classes=5");
        var e = Assert.Throws<WeakSegException>(() => { _ = five.For(dataset); });
        Assert.Contains("model.num_classes is 5", e.Message);
        Assert.Contains("has 3 foreground classes", e.Message);
        Assert.Contains(dataset.Root, e.Message);
        Assert.Throws<WeakSegException>(() => { _ = bound.For(0); });
    }

    [Fact]
    public void A_cam_config_file_with_another_class_count_is_refused_naming_the_file_and_both_counts()
    {
        using var dir = TestPaths.NewTempDir();
        var dataset = WeakSeg.Data.VocDataset.Open(PipelineTestData.MakeData(dir.File("data")), "train");
        string File(string name, string json) { var path = dir.File(name); System.IO.File.WriteAllText(path, json); return path; }
        var preset = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu);

        var voc = File("voc.json", """{ "model": { "num_classes": 20 } }""");
        var later = preset.Overlay(voc).With("trainer.steps=3");                 // a later flag does not hide where the count came from
        var e = Assert.Throws<WeakSegException>(() => { _ = later.For(dataset); });
        Assert.StartsWith(voc + ": model.num_classes is 20 but the dataset " + dataset.Root + " (split 'train') has 3 foreground classes", e.Message);
        Assert.EndsWith("(" + WeakSeg.Data.DatasetClassCount.Advice + ")", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        Assert.Equal(3, preset.Overlay(File("same.json", """{ "model": { "num_classes": 3 } }""")).For(dataset).ModelConfig.NumClasses);
        var without = preset.Overlay(File("without.json", """{ "trainer": { "steps": 2 } }""")).For(dataset);
        Assert.Equal(3, without.ModelConfig.NumClasses);
        Assert.Equal(2, without.Trainer.Steps);
        // The count of a --set assignment is named the same way.
        var set = Assert.Throws<WeakSegException>(() => { _ = preset.With("model.num_classes=5").For(dataset); });
        Assert.StartsWith("--set model.num_classes=5: model.num_classes is 5", set.Message);
    }

    [Fact]
    public void A_segmentation_config_file_with_another_class_count_is_refused_naming_the_file_and_both_counts()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var dataset = WeakSeg.Data.VocDataset.Open(data, "train");
        SegmentationConfig Read(string name, int? numClasses)
        {
            var json = JsonNode.Parse(PipelineTestData.TinySegmentationConfigJson(steps: 1))!.AsObject();
            if (numClasses is { } k) json["num_classes"] = k; else json.Remove("num_classes");
            var path = dir.File(name);
            File.WriteAllText(path, json.ToJsonString());
            return SegmentationConfig.FromJson(File.ReadAllText(path), path);
        }

        var voc = Read("voc-seg.json", 20);
        var e = Assert.Throws<WeakSegException>(() => { _ = (voc with { Steps = 2 }).For(dataset); });
        Assert.Equal(dir.File("voc-seg.json") + ": num_classes is 20 but the dataset " + dataset.Root + " (split 'train') has 3 foreground classes (" +
                     WeakSeg.Data.DatasetClassCount.Advice + ")", e.Message);
        Assert.Equal(3, Read("same-seg.json", 3).For(dataset).NumClasses);
        Assert.Equal(3, Read("without-seg.json", null).For(dataset).NumClasses);
        Assert.Equal(3, SegmentationConfig.Cpu.For(dataset).NumClasses);

        // The run refuses it too, before it writes anything (it used to overwrite the count).
        var run = dir.File("seg-run");
        var refused = Assert.Throws<WeakSegException>(() => SegmentationRun.Train(new SegmentationTrainRequest
        {
            DataRoot = data, Split = "train", RunDirectory = run, Config = voc, Threads = 2, LoaderWorkers = 1,
        }));
        Assert.StartsWith(dir.File("voc-seg.json") + ": num_classes is 20", refused.Message);
        Assert.False(File.Exists(Path.Combine(run, "config.json")));
        // The source of the count is never written (config.json and stage records compare the JSON).
        Assert.DoesNotContain("source", voc.ToJson());
    }

    [Fact]
    public void The_pipeline_refuses_a_segmenter_file_with_another_class_count_before_training_anything()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var path = dir.File("seg.json");
        File.WriteAllText(path, (SegmentationConfig.Cpu with { NumClasses = 20 }).ToJson());
        var options = PipelineTestData.TinyOptions(data, dir.File("out")) with { Segmentation = SegmentationConfig.FromJson(File.ReadAllText(path), path) };
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(options));
        Assert.StartsWith(path + ": num_classes is 20 but the dataset", e.Message);
        Assert.Contains("has 3 foreground classes", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("out"), "stages", "cam-train.json")));
        Assert.False(Directory.Exists(Path.Combine(dir.File("out"), "cam", "run")));
    }

    [Theory]
    [InlineData(BuiltInMethods.MctFormerV2)]
    [InlineData(CamResNetMethod.MethodName)]
    public void Train_builds_a_model_with_the_datasets_class_count(string method)
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var recipe = method == CamResNetMethod.MethodName
            ? TrainRecipe.Preset(method, MethodPreset.Cpu).With("model.image_size=32").With("trainer.steps=1").With("trainer.batch_size=4")
                .With("trainer.warmup_steps=0").With("trainer.threads=2")
            : TrainRecipe.Preset(method, MethodPreset.Cpu).Overlay(PipelineTestData.TinyOverlay(steps: 1), "<test>");
        Assert.False(recipe.HasClassCount);
        var outcome = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = dir.File("run"), Recipe = recipe, Workers = 1 });
        Assert.True(outcome.Result.Completed);
        Assert.Equal(3, outcome.Config.Recipe.ModelConfig.NumClasses);
        var written = JsonFiles.ReadObject(Path.Combine(dir.File("run"), "config.json"));
        Assert.Equal(3, written["model"]!["num_classes"]!.GetValue<int>());
        Assert.Equal(3, written["data"]!["num_classes"]!.GetValue<int>());
        using var trained = TrainPipeline.LoadTrained(dir.File("run"), out _);
        Assert.Equal(3, trained.NumClasses);
    }

    [Fact]
    public void The_pipeline_builds_its_cam_model_and_segmenter_with_the_datasets_class_count()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = PipelineTestData.TinyOptions(data, dir.File("out")) with { StopAfter = PipelineEnd.Cam };
        Assert.False(options.CamRecipe.HasClassCount);
        Assert.Equal(0, options.Segmentation.NumClasses);
        WsssPipeline.Run(options);
        var run = new RunDirectory(Path.Combine(dir.File("out"), "cam", "run")).ReadConfig<RunConfig>();
        Assert.Equal(3, run.Recipe.ModelConfig.NumClasses);
        var report = JsonFiles.ReadObject(Path.Combine(dir.File("out"), "report.json"));
        Assert.Equal(3, report["run"]!["model"]!["num_classes"]!.GetValue<int>());
    }

    // ---- the preset table ----

    [Fact]
    public void Every_method_has_a_cpu_and_a_paper_row_bundling_model_trainer_augmentation_and_segmenter()
    {
        Assert.Equal(["cpu", "paper"], Presets.Names);
        Assert.Equal(MethodPreset.Cpu, Presets.Parse(" CPU "));
        Assert.Contains("known: cpu, paper", Assert.Throws<WeakSegException>(() => Presets.Parse("fast")).Message);
        var cpu = Presets.Get(MethodPreset.Cpu);
        var paper = Presets.Get("paper");
        Assert.Equal((TrainRecipe.CpuSteps, 32, 1e-3, 30L, 0.5), (cpu.Trainer.Steps, cpu.Trainer.BatchSize, cpu.Trainer.BaseLr, cpu.Trainer.WarmupSteps, cpu.Augmentation.MinAreaScale));
        Assert.Equal(new TrainerOptions().ToJson(), paper.Trainer.ToJson());
        Assert.Equal(SegmentationConfig.Cpu.ToJson(), cpu.Segmenter.ToJson());
        Assert.Equal(SegmentationConfig.Paper.ToJson(), paper.Segmenter.ToJson());
        var deeplab = cpu.Segmentation(SegmentationModel.DeepLabLargeFov);
        Assert.Equal((SegmentationModel.DeepLabLargeFov, 256, 0.1), (deeplab.Model, deeplab.ResolvedDeepLab.HeadChannels, deeplab.EncoderLearningRateScale));
        foreach (var name in MethodRegistry.Names)
        {
            var factory = MethodRegistry.Get(name);
            foreach (var bundle in Presets.All)
            {
                if (PaperNeedsUserWeights(name, bundle.Preset)) continue;
                var recipe = bundle.Recipe(name);
                Assert.Equal(factory.ConfigToJson(factory.DefaultConfig(bundle.Preset)).ToJsonString(), recipe.ToJson()["model"]!.ToJsonString());
                Assert.Equal(TrainRecipe.MethodSchedule(recipe.ModelConfig, bundle.Trainer).ToJson(), recipe.Trainer.ToJson());
                Assert.Equal(recipe.ToJson().ToJsonString(), TrainRecipe.Preset(name, bundle.Preset).ToJson().ToJsonString());
                // the method's own record preset is the row's model, bound to a dataset it builds
                Assert.Empty(factory.Validate(recipe.For(3).ModelConfig));
            }
        }
    }

    /// <summary>The cpu row's stem is the measured choice per network (README "From scratch vs the pretrained stem"): the frozen ImageNet
    /// ResNet-18 where its maps (or segmentation) were better, the patch stem elsewhere; the paper row is always DeiT's patch stem.</summary>
    [Fact]
    public void The_cpu_row_uses_the_pretrained_stem_where_it_measured_better_and_the_paper_row_never()
    {
        string? Stem(string method, MethodPreset preset)
        {
            var factory = MethodRegistry.Get(method);
            return factory.ConfigToJson(factory.DefaultConfig(preset))["backbone"]?["stem"]?.GetValue<string>();
        }
        string[] onResNet18 = [WeakSeg.Methods.MctFormerPlus.MctFormerPlusMethod.MethodName, BuiltInMethods.VitCls];
        string[] onPatches = [BuiltInMethods.MctFormerV1, BuiltInMethods.MctFormerV2, BuiltInMethods.WeakTr, BuiltInMethods.Cam, BuiltInMethods.ToCo, BuiltInMethods.MoRe];
        foreach (var method in onResNet18) Assert.Equal("resnet18-s8", Stem(method, MethodPreset.Cpu));
        foreach (var method in onPatches) Assert.Equal("patch", Stem(method, MethodPreset.Cpu));
        foreach (var method in onResNet18.Concat(onPatches)) Assert.Equal("patch", Stem(method, MethodPreset.Paper));
        Assert.Equal(VitStem.ResNet18Stride8, Presets.Get(MethodPreset.Cpu).Segmenter.Backbone.Stem);
        Assert.True(Presets.Get(MethodPreset.Cpu).Segmenter.Backbone.FreezeStem);
        Assert.Equal(VitStem.Patch, Presets.Get(MethodPreset.Paper).Segmenter.Backbone.Stem);
    }

    /// <summary>AuxSegNet's paper row needs the user's ResNet-38 weights: its schedule (and so its recipe) is refused, naming them.</summary>
    static bool PaperNeedsUserWeights(string method, MethodPreset preset)
    {
        if (method != WeakSeg.Methods.AuxSegNet.AuxSegNetMethod.MethodName || preset != MethodPreset.Paper) return false;
        Assert.Contains("ResNet-38", Assert.Throws<WeakSegException>(() => { _ = TrainRecipe.Preset(method, preset); }).Message);
        return true;
    }

    // ---- one JSON contract ----

    public static TheoryData<string> MethodNames() => [.. MethodRegistry.Names];

    [Theory]
    [MemberData(nameof(MethodNames))]
    public void Every_method_config_round_trips_through_the_one_json_contract(string name)
    {
        var factory = MethodRegistry.Get(name);
        foreach (var preset in Enum.GetValues<MethodPreset>())
        {
            var config = factory.DefaultConfig(preset).WithNumClasses(4);
            var text = WeakSegJson.Text(factory.ConfigToJson(config));
            var back = factory.ConfigFromJson(JsonNode.Parse(text)!, "<test>");
            Assert.Equal(text, WeakSegJson.Text(factory.ConfigToJson(back)));
            Assert.Equal(4, back.NumClasses);
        }
    }

    [Fact]
    public void Every_run_record_round_trips_through_the_one_json_contract()
    {
        RoundTrip(new TrainerOptions { Steps = 7, Optimizer = OptimizerKind.Sgd, Schedule = ScheduleKind.Poly, GradClipNorm = 1.5 });
        RoundTrip(new AugmentationSettings { Mode = WeakSeg.Data.CropMode.RandomScaleCrop, MinAreaScale = 0.3 });
        RoundTrip(SegmentationConfig.Cpu with { NumClasses = 4, Loss = SegmentationDecoderLoss.Naive });
        RoundTrip(new SegmentationRunInfo { Config = SegmentationConfig.Paper with { NumClasses = 20 }, DataRoot = "/d", ClassNames = ["background", "a"], Seed = 3 });
        RoundTrip(new AffinityRunConfig());
        RoundTrip(new CheckpointState { Step = 12, LearningRate = 0.5, Options = new TrainerOptions { Threads = 2 }, Checksums = new() { ["model.bin"] = "00ff" } });
        // enums are written as names and read ignoring case, '-' and '_'
        Assert.Contains("\"optimizer\": \"Sgd\"", WeakSegJson.Serialize(new TrainerOptions { Optimizer = OptimizerKind.Sgd }));
        Assert.Equal(ScheduleKind.WarmupCosine, JsonSerializer.Deserialize("{\"schedule\": \"warmup-cosine\"}", WeakSegJson.TypeInfo<TrainerOptions>())!.Schedule);
        // unknown fields are refused
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("{\"stepz\": 3}", WeakSegJson.TypeInfo<TrainerOptions>()));
    }

    static void RoundTrip<T>(T value)
    {
        var text = WeakSegJson.Serialize(value);
        var back = JsonSerializer.Deserialize(text, WeakSegJson.TypeInfo<T>());
        Assert.Equal(text, WeakSegJson.Serialize(back));
    }

    [Fact]
    public void The_segmentation_backbone_keeps_its_grid_size_key_and_reads_files_with_it()
    {
        var config = SegmentationConfig.Cpu with { NumClasses = 10 };
        var json = JsonNode.Parse(config.ToJson())!.AsObject();
        var backbone = json["backbone"]!.AsObject();
        Assert.Equal("grid_size", backbone.Last().Key);                            // last, as every segmentation config.json since format 1
        Assert.Equal(224 / 8, backbone["grid_size"]!.GetValue<int>());
        Assert.Equal(config.ToJson(), SegmentationConfig.FromJson(config.ToJson()).ToJson());
        // the method configs' backbones never had it
        Assert.DoesNotContain("grid_size", WeakSegJson.Text(MethodRegistry.Get(BuiltInMethods.MctFormerV2).ConfigToJson(MctFormerConfig.Cpu)));
    }

    // ---- one name per small ViT ----

    [Fact]
    public void The_three_small_cpu_vits_have_one_name_each()
    {
        Assert.Equal(MctFormerConfig.Cpu.Backbone, VitConfig.FromPreset("vit-cpu-128x4"));
        // a name is a shape; the stem (patch or the ImageNet ResNet-18) is chosen separately
        Assert.Equal(SegmentationConfig.Cpu.Backbone with { Stem = VitStem.Patch }, VitConfig.FromPreset("vit-cpu-192x4"));
        Assert.Equal(VitConfig.Cpu128x4 with { Stem = VitStem.ResNet18Stride8 }, VitConfig.Cpu128x4OnResNet18);
        Assert.Equal(TrainBenchmarkSettings.Preset("cpu").ModelConfig.BackboneConfig! with { NumClassTokens = 1 },
            VitConfig.FromPreset("vit-cpu-192x6") with { NumClassTokens = 1 });
        var shapes = new[] { "vit-cpu-128x4", "vit-cpu-192x4", "vit-cpu-192x6" }.Select(VitConfig.FromPreset)
            .Select(v => (v.EmbedDim, v.Depth, v.NumHeads)).ToList();
        Assert.Equal([(128, 4, 4), (192, 4, 3), (192, 6, 4)], shapes);
        // the single-stage methods' cpu backbones are the same network with their own position-embedding resize
        Assert.Equal(VitConfig.Cpu128x4 with { PositionEmbeddingResize = WeakSeg.Methods.ToCo.ToCoConfig.Cpu.Backbone.PositionEmbeddingResize }, WeakSeg.Methods.ToCo.ToCoConfig.Cpu.Backbone);
        Assert.Equal(VitConfig.Cpu128x4 with { PositionEmbeddingResize = WeakSeg.Methods.MoRe.MoReConfig.Cpu.Backbone.PositionEmbeddingResize }, WeakSeg.Methods.MoRe.MoReConfig.Cpu.Backbone);
        Assert.Equal(VitConfig.Small, VitConfig.FromPreset("deit-small"));
        Assert.Contains("vit-cpu-192x6", Assert.Throws<WeakSegException>(() => VitConfig.FromPreset("cpu")).Message);
    }
}
