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

    /// <summary>Training FLOPs per image of the backbone alone (patch embedding and blocks; no method head).</summary>
    public static double Backbone(IMethodConfig config) => VitFlops.TrainStep(Dims(config.BackboneConfig));
}
