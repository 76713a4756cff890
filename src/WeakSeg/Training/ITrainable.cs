using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>One training batch as tensors on the training device. Created lazily by the batch stream on the training
/// thread, inside the step's dispose scope, so the trainer frees it when the step ends.</summary>
/// <param name="Images">[B, 3, H, W] float32, normalised</param>
/// <param name="Labels">[B, K] float32 multi-hot over the K foreground classes</param>
/// <param name="Masks">[B, H, W] int64 with 255 = ignore, or null (segmentation trainers; a label-updating round's pixel labels)</param>
/// <param name="Saliency">[B, H, W] float32 in [0, 1] (0 outside the image), or null: the saliency maps of the images, for methods that take saliency</param>
public sealed record TrainBatch(Tensor Images, Tensor Labels, Tensor? Masks = null, Tensor? Saliency = null)
{
    public int Count => (int)Images.shape[0];
}

/// <summary>An endless source of batches addressed by global step, so that a resumed run sees exactly the batches an
/// uninterrupted run would. <c>Stream(s)</c> yields the batch of step s first, then s+1, ... The enumerator must build
/// tensors inside <c>MoveNext</c> (lazily), not ahead of time: the trainer calls <c>MoveNext</c> inside the step's scope.</summary>
public interface IBatchStream
{
    IEnumerable<TrainBatch> Stream(long startStep);
}

/// <summary>Adapter from a function, e.g. <c>new DelegateBatchStream(s => loader.Stream(s).Select(b => ToTrainBatch(b.ToTensors(device))))</c>.</summary>
public sealed class DelegateBatchStream(Func<long, IEnumerable<TrainBatch>> stream) : IBatchStream
{
    public IEnumerable<TrainBatch> Stream(long startStep) => stream(startStep);
}

/// <summary>What a step knows besides the batch.</summary>
/// <param name="Step">0-based index of the step being computed (= optimizer updates done before it)</param>
/// <param name="TotalSteps">steps in the whole run</param>
/// <param name="LearningRate">learning rate this step uses</param>
/// <param name="Random">managed RNG seeded from (seed, step) only — use it for any managed randomness in a loss so resume stays exact</param>
public sealed record TrainStepContext(long Step, long TotalSteps, double LearningRate, Random Random);

/// <summary>A loss as the method computes it: the scalar to minimise and its named scalar parts (for the log).</summary>
/// <param name="Total">scalar tensor with autograd history</param>
/// <param name="Parts">named scalar tensors (detached or not); may be empty</param>
public sealed record LossTerms(Tensor Total, IReadOnlyList<(string Name, Tensor Value)> Parts)
{
    public LossTerms(Tensor total) : this(total, []) { }
}

/// <summary>What a WSSS method supplies to the shared <see cref="Trainer"/>.</summary>
public interface ITrainable
{
    /// <summary>The module whose weights are trained, checkpointed and restored (include EMA teachers etc. as submodules or buffers).</summary>
    nn.Module Model { get; }

    /// <summary>Forward + loss for one batch. Runs inside the step's dispose scope, with grad enabled and the model in train mode.</summary>
    LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context);

    /// <summary>Parameters the optimizer updates (default: every parameter of <see cref="Model"/> with requires_grad). Order must be stable.</summary>
    IEnumerable<(string Name, Parameter Parameter)> TrainableParameters() =>
        Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter));

    /// <summary>Multiplier of the scheduled learning rate for a parameter (default 1; e.g. 0.1 for a pretrained encoder,
    /// WeakTr retraining). Must be stable for a run: it decides the optimizer's groups.</summary>
    double LearningRateScale(string parameterName) => 1.0;

    /// <summary>Called after the optimizer has updated the weights of step <paramref name="context"/>.Step, inside that step
    /// (e.g. an EMA teacher following the student). State it changes must live in <see cref="Model"/> so checkpoints keep it.</summary>
    void AfterOptimizerStep(TrainStepContext context) { }
}
