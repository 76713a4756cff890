using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>
/// A capability of a trained method: label-updating rounds. After a round of training the method makes new pixel labels (and new
/// saliency targets) for the next round from its own predictions, the image labels and a saliency map, never from masks; the next
/// round trains from this round's weights on batches carrying those labels (<see cref="Training.TrainBatch.Masks"/>) and saliency
/// (<see cref="Training.TrainBatch.Saliency"/>). A registration declares it as data (<see cref="IWsssMethodFactory.HasLabelRounds"/>),
/// so the pipeline checks <c>--rounds</c> without building the model; the method class implements this interface.
/// </summary>
public interface ILabelRoundsMethod : IWsssMethod
{
    /// <summary>
    /// The next round's labels of one image, under the model's eval mode: image [1, 3, H, W] normalised as for training, image labels
    /// [1, K] multi-hot, saliency [1, H, W] in [0, 1] (the given or estimated map) → (labels [H·W] bytes: 0 background, c + 1 for
    /// foreground class c, 255 ignore; saliency [H·W] in [0, 1]: the next round's saliency target).
    /// </summary>
    (byte[] Labels, float[] Saliency) NextRoundLabels(Tensor image, Tensor imageLabels, Tensor saliency);
}
