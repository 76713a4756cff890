using System.Text.Json.Nodes;
using WeakSeg.Data.Synthetic;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Training;

namespace WeakSeg.Tests.Pipelines;

/// <summary>Tiny synthetic data and a tiny MCTformer recipe for pipeline and CLI tests.</summary>
public static class PipelineTestData
{
    public const int Classes = 3;

    /// <summary>8 train + 2 val images of 32×32 with 3 classes.</summary>
    public static string MakeData(string root, int train = 8)
    {
        SyntheticDataset.Generate(root, new SyntheticDatasetConfig { TrainImages = train, ValImages = 2, ImageSize = 32, NumClasses = Classes, Supersampling = 1, Threads = 2 });
        return root;
    }

    public static VitConfig TinyBackbone => new() { ImageSize = 32, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0 };

    public static TrainRecipe TinyRecipe(string method = BuiltInMethods.MctFormerV2, long steps = 4) =>
        TrainRecipe.Preset(method, MethodPreset.Cpu).For(Classes).Overlay(TinyOverlay(steps), "<test>");

    /// <summary>The JSON a --config file holds for the tiny recipe.</summary>
    public static JsonObject TinyOverlay(long steps = 4) => new()
    {
        ["model"] = new JsonObject
        {
            ["backbone"] = new JsonObject { ["image_size"] = 32, ["patch_size"] = 8, ["embed_dim"] = 16, ["depth"] = 2, ["num_heads"] = 2 },
            ["cam_layers"] = 2,
        },
        ["trainer"] = new JsonObject { ["steps"] = steps, ["batch_size"] = 4, ["warmup_steps"] = 1, ["checkpoint_every"] = 2, ["log_every"] = 1, ["threads"] = 2 },
    };

    /// <summary>The JSON a --seg-config file holds for a tiny segmenter on the 32 px data (null steps: the preset's).</summary>
    public static string TinySegmentationConfigJson(long? steps = null)
    {
        var config = WeakSeg.Segmentation.SegmentationConfig.Cpu with
        {
            Backbone = new VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, BatchSize = 4, WarmupSteps = 1,
        };
        return (steps is { } s ? config with { Steps = s } : config).ToJson();
    }

    public static MctFormerConfig TinyMctConfig(MctFormerVariant variant) => new()
    {
        Variant = variant, NumClasses = Classes, CamLayers = 2, Backbone = TinyBackbone,
    };

    /// <summary>Pipeline options of a tiny WeakTr run (4 CAM steps, 4 segmenter steps) on the data in <paramref name="data"/>.</summary>
    public static WsssPipelineOptions TinyOptions(string data, string outDir) => new()
    {
        OutDirectory = outDir,
        DataRoot = data,
        CamRecipe = TrainRecipe.Preset(BuiltInMethods.WeakTr, MethodPreset.Cpu).Overlay(new JsonObject          // no class count: the pipeline takes it from the data
        {
            ["model"] = new JsonObject
            {
                ["backbone"] = new JsonObject { ["image_size"] = 32, ["patch_size"] = 8, ["embed_dim"] = 16, ["depth"] = 2, ["num_heads"] = 2 },
                ["ffn_hidden"] = 2,
            },
            ["trainer"] = new JsonObject { ["steps"] = 4, ["batch_size"] = 4, ["warmup_steps"] = 1, ["checkpoint_every"] = 2, ["log_every"] = 1 },
        }, "<test>"),
        Localization = new LocalizationOptions { Scales = [1.0], Flip = true },
        Segmentation = SegmentationConfig.Cpu with
        {
            Backbone = new VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, Steps = 4, BatchSize = 4, WarmupSteps = 1, CheckpointEvery = 2, LogEvery = 1,
        },
        Seed = 3,
        Threads = 2,
        Workers = 1,
        OracleThreshold = true,                         // these tests check the sweep; the default (mask-free) path is in LabelOnlyPipelineTests
    };
}
