using System.Text.Json.Nodes;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

public class TrainRecipeTests
{
    [Fact]
    public void Recipe_json_round_trip_keeps_every_value()
    {
        var recipe = PipelineTestData.TinyRecipe(BuiltInMethods.MctFormerV1) with
        {
            Augmentation = new AugmentationSettings { MinAreaScale = 0.3, ColorJitter = 0.1, Mode = WeakSeg.Data.CropMode.RandomScaleCrop },
        };
        var json = recipe.ToJson();
        var back = TrainRecipe.FromJson(JsonNode.Parse(json.ToJsonString())!.AsObject(), "<round trip>");
        Assert.True(JsonNode.DeepEquals(json, back.ToJson()));
        var model = Assert.IsType<MctFormerConfig>(back.ModelConfig);
        Assert.Equal(MctFormerVariant.V1, model.Variant);
        Assert.Equal(16, model.Backbone.EmbedDim);
        Assert.Equal(2, model.CamLayers);
        Assert.Equal(4, back.Trainer.Steps);
        Assert.Equal(1e-3, back.Trainer.BaseLr);
        Assert.Equal(0.3, back.Augmentation.MinAreaScale);
        Assert.Equal(WeakSeg.Data.CropMode.RandomScaleCrop, back.Augmentation.Mode);
        // Enums are strings, keys snake_case.
        Assert.Equal("V1", json["model"]!["variant"]!.GetValue<string>());
        Assert.Equal("RandomScaleCrop", json["augmentation"]!["mode"]!.GetValue<string>());
        Assert.Equal("DinoScaleFactor", json["model"]!["backbone"]!["position_embedding_resize"]!.GetValue<string>());
    }

    [Fact]
    public void Overlay_merges_fields_over_the_preset()
    {
        var preset = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).For(5);
        var merged = preset.Overlay(new JsonObject { ["trainer"] = new JsonObject { ["steps"] = 7 }, ["model"] = new JsonObject { ["backbone"] = new JsonObject { ["depth"] = 3 } } }, "f.json");
        Assert.Equal(7, merged.Trainer.Steps);
        Assert.Equal(preset.Trainer.BatchSize, merged.Trainer.BatchSize);
        var model = Assert.IsType<MctFormerConfig>(merged.ModelConfig);
        Assert.Equal(3, model.Backbone.Depth);
        Assert.Equal(WeakSeg.Models.Vit.VitConfig.Cpu128x4.EmbedDim, model.Backbone.EmbedDim);
        Assert.Equal(5, model.NumClasses);
    }

    [Fact]
    public void Set_lays_one_field_over_the_recipe_and_reads_enum_names_leniently()
    {
        var preset = TrainRecipe.Preset(BuiltInMethods.WeakTr, MethodPreset.Cpu).For(5);
        var set = preset.With("trainer.steps=9").With("model.backbone.depth=3").With("augmentation.mode=RandomScaleCrop").With("trainer.device=\"cpu\"");
        Assert.Equal(9, set.Trainer.Steps);
        Assert.Equal(WeakSeg.Data.CropMode.RandomScaleCrop, set.Augmentation.Mode);
        var model = Assert.IsType<WeakSeg.Methods.WeakTr.WeakTrConfig>(set.ModelConfig);
        Assert.Equal(3, model.Backbone.Depth);
        Assert.Equal(WeakSeg.Models.Vit.VitConfig.Cpu128x4.EmbedDim, model.Backbone.EmbedDim);
        foreach (var (text, fusion) in new[] { ("mean-sum", WeakSeg.Methods.WeakTr.WeakTrFusion.MeanSum), ("fixed_random", WeakSeg.Methods.WeakTr.WeakTrFusion.FixedRandom), ("Aaf", WeakSeg.Methods.WeakTr.WeakTrFusion.Aaf) })
            Assert.Equal(fusion, ((WeakSeg.Methods.WeakTr.WeakTrConfig)preset.With("model.fusion=" + text).ModelConfig).Fusion);
        // Written back with the enum's own name, as before.
        Assert.Equal("MeanSum", preset.With("model.fusion=mean-sum").ToJson()["model"]!["fusion"]!.GetValue<string>());

        Assert.Contains("--set steps=3: expected SECTION.FIELD=VALUE", Assert.Throws<WeakSegException>(() => preset.With("steps=3")).Message);
        Assert.Contains("'fusion'", Assert.Throws<WeakSegException>(() => TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).For(5).With("model.fusion=aaf")).Message);
        Assert.Contains("not one of MeanSum, Aaf, FixedRandom", Assert.Throws<WeakSegException>(() => preset.With("model.fusion=average")).Message);
    }

    [Fact]
    public void Unknown_fields_are_errors_naming_the_file_and_the_field()
    {
        using var dir = TestPaths.NewTempDir();
        var preset = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).For(5);

        var nested = dir.File("nested.json");
        File.WriteAllText(nested, """{ "model": { "backbone": { "embed_dimm": 64 } } }""");
        var e1 = Assert.Throws<WeakSegException>(() => preset.Overlay(nested));
        Assert.Contains(nested, e1.Message);
        Assert.Contains("embed_dimm", e1.Message);

        var top = dir.File("top.json");
        File.WriteAllText(top, """{ "trainer": { "steps": 3 }, "optimiser": {} }""");
        var e2 = Assert.Throws<WeakSegException>(() => preset.Overlay(top));
        Assert.Contains(top, e2.Message);
        Assert.Contains("'optimiser'", e2.Message);

        var trainer = dir.File("trainer.json");
        File.WriteAllText(trainer, """{ "trainer": { "stepz": 3 } }""");
        var e3 = Assert.Throws<WeakSegException>(() => preset.Overlay(trainer));
        Assert.Contains(trainer, e3.Message);
        Assert.Contains("stepz", e3.Message);

        var enumValue = dir.File("enum.json");
        File.WriteAllText(enumValue, """{ "model": { "variant": "V1" } }""");
        var e4 = Assert.Throws<WeakSegException>(() => preset.Overlay(enumValue).EnsureValid());
        Assert.Contains("Variant must be V2", e4.Message);
    }

    [Fact]
    public void Unknown_method_lists_the_known_ones()
    {
        var e = Assert.Throws<WeakSegException>(() => MethodRegistry.Get("mctformer-v3"));
        Assert.Contains("'mctformer-v3'", e.Message);
        foreach (var name in new[] { "cam", "mctformer-v1", "mctformer-v2", "vit-cls" }) Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Run_without_config_json_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var e = Assert.Throws<WeakSegException>(() => RunConfig.Load(dir.Path));
        Assert.Contains(Path.Combine(dir.Path, "config.json"), e.Message);
        Assert.Contains("not found", e.Message);
    }
}
