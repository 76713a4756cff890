using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Methods;
using WeakSeg.Segmentation;
using static TorchSharp.torch;

namespace WeakSeg.Pipelines;

/// <summary>
/// Val predictions from a trained single-stage method's own decoder (<see cref="ISegmentationDecoderMethod"/>): the image is
/// ImageNet-normalised at its own size, the method's inference protocol gives the class probabilities at
/// <see cref="SegmentationInferenceOptions.Scales"/> (with the flipped view when <see cref="SegmentationInferenceOptions.Flip"/>),
/// then the optional refinement (CRF) and the argmax, as for a retrained segmenter.
/// </summary>
public sealed class MethodDecoderPredictor(ISegmentationDecoderMethod method, Device device) : ILabelPredictor
{
    readonly EvalTransform _transform = new();

    public LabelMap Predict(RgbImage image, SegmentationInferenceOptions options)
    {
        method.Model.eval();
        float[] probabilities;
        using (var scope = torch.NewDisposeScope())
        {
            var (chw, h, w) = _transform.Apply(image);
            var input = torch.tensor(chw, [3, h, w], device: device);
            var probs = method.SegmentationProbabilities(input, options.Scales, options.Flip);
            probabilities = probs.cpu().contiguous().data<float>().ToArray();
        }
        return SegmentationPredictor.RefineAndArgmax(image, probabilities, method.NumClasses + 1, options);
    }
}
