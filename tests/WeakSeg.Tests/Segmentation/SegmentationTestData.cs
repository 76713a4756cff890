using WeakSeg.Models.Vit;
using WeakSeg.Segmentation;

namespace WeakSeg.Tests.Segmentation;

/// <summary>A tiny segmenter configuration (3 classes, one-layer ViT, crop 32) for the segmentation and CLI tests.</summary>
internal static class SegmentationTestData
{
    public static SegmentationConfig Tiny(long steps = 10) => new()
    {
        NumClasses = 3,
        Backbone = new VitConfig { PatchSize = 8, EmbedDim = 32, Depth = 1, NumHeads = 2 },
        CropSize = 32, DecoderLayers = 1, DecoderDropout = 0, EncoderDropPath = 0, ClipPatchSize = 8,
        Steps = steps, BatchSize = 4, LearningRate = 0.05, MinLearningRate = 1e-3, EncoderLearningRateScale = 1,
        MinRescale = 1, MaxRescale = 1, InferenceScales = [1.0], InferenceFlip = false, CheckpointEvery = 1000, LogEvery = 5,
    };
}
