using WeakSeg.Refinement;
using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>
/// A capability of a trained method: its network has its own segmentation decoder (single-stage methods: one training yields the
/// CAMs, the pseudo labels and the decoder). The pipeline then takes its val predictions from this decoder instead of retraining a
/// separate segmenter. A registration declares it as data (<see cref="IWsssMethodFactory.HasSegmentationDecoder"/>), so the pipeline
/// plans its stages without building the model; the method class implements this interface.
/// </summary>
public interface ISegmentationDecoderMethod : IWsssMethod
{
    /// <summary>Input scales of the method's own inference, relative to the image size.</summary>
    IReadOnlyList<double> DecoderScales { get; }

    /// <summary>Dense-CRF kernels of the method's own post-processing (used when the pipeline runs with CRF).</summary>
    DenseCrfConfig DecoderCrf { get; }

    /// <summary>
    /// Class probabilities of one image by the method's inference protocol: image [3, H, W] normalised as for training →
    /// [K + 1, H, W] (background first). Called under the model's eval mode.
    /// </summary>
    Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip);
}
