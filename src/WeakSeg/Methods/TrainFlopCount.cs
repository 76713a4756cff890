using WeakSeg.Models.ResNet;
using WeakSeg.Models.Vit;
using WeakSeg.Training.Bench;

namespace WeakSeg.Methods;

/// <summary>
/// A method configuration that counts the matmul FLOPs of one training step per image in full: its backbone and its own heads
/// (<see cref="VitFlops"/>'s model: 1 multiply-add = 2 FLOPs, training ≈ 3 × forward). <c>weakseg bench train</c> reports this
/// count as the method's; for a configuration without it, only <see cref="TrainFlops.Backbone"/>, labelled a lower bound.
/// </summary>
public interface ITrainFlopCount
{
    /// <summary>Training FLOPs per image: 3 × (backbone forward + the method's heads).</summary>
    double TrainFlopsPerImage();
}

/// <summary>FLOP counts of a method configuration's ViT backbone.</summary>
public static class TrainFlops
{
    /// <summary>The FLOP-relevant shape of the backbone actually built (square input, its class tokens).</summary>
    public static VitDims Dims(VitConfig backbone) => new(backbone.ImageSize, backbone.ImageSize, backbone.PatchSize, backbone.EmbedDim,
        backbone.Depth, backbone.MlpRatio, backbone.NumClassTokens, backbone.InChannels);

    /// <summary>Training FLOPs per image of the ViT backbone alone (patch embedding or hybrid stem, and blocks; no method head).</summary>
    /// <exception cref="WeakSegException">the configuration has no ViT backbone and does not count its own FLOPs</exception>
    public static double Backbone(IMethodConfig config) => config.BackboneConfig is { } vit ? Vit(vit)
        : throw new WeakSegException($"{config.Title} has no ViT backbone and does not count its training FLOPs");

    /// <summary>Training FLOPs per image of <paramref name="backbone"/> plus a method head of <paramref name="extraForwardFlops"/>
    /// forward FLOPs: 3 × forward, with a hybrid stem counted as it runs (<see cref="HybridStemAdjustment"/>).</summary>
    public static double Vit(VitConfig backbone, double extraForwardFlops = 0) =>
        VitFlops.TrainStep(Dims(backbone), extraForwardFlops) + HybridStemAdjustment(backbone);

    /// <summary>
    /// What a hybrid stem changes in <see cref="VitFlops.TrainStep"/>'s count: the p×p patch convolution (3 × its forward) is replaced by
    /// the ResNet-18 trunk up to the stem's stride and the 1×1 projection to the token width (3 × forward). A frozen trunk gets no
    /// gradients and its input needs none, so it costs one forward; a fine-tuned one 3 × forward. 0 for the patch stem.
    /// </summary>
    public static double HybridStemAdjustment(VitConfig backbone)
    {
        int stages = VitStems.ResNetStages(backbone.Stem);
        if (stages == 0) return 0;
        var dims = Dims(backbone);
        double cnn = ResNetFlops.Forward(ResNetConfig.PackagedResNet18 with { Stages = stages }, backbone.ImageSize, backbone.ImageSize);
        double projection = 2.0 * dims.Patches * ResNetConfig.StageChannels(stages) * backbone.EmbedDim;
        return -3 * VitFlops.PatchEmbed(dims) + 3 * projection + (backbone.FreezeStem ? 1 : 3) * cnn;
    }
}
