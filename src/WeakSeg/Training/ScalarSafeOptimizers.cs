using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>
/// TorchSharp's AdamW and SGD with every Scalar of their update held across the native calls.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>AdamW.step()</c> and <c>SGD.step()</c> pass every coefficient (1 − lr·wd, β, 1 − β, ε, the step size, the
/// implicit alpha 1 of <c>add_(ε)</c>) as a temporary <see cref="Scalar"/> that nothing keeps reachable while libtorch runs. A garbage
/// collection started by another thread during the native call (the batch loader's worker allocates image buffers all the time) can
/// finalize such a Scalar and free its native memory mid-call; libtorch then reads a garbage tag and fails with
/// "Unknown scalar type" or "Expected false to be true" (c10/core/Scalar.h) at a random step. These subclasses do the same update,
/// operation for operation (so the results are bitwise those of TorchSharp's optimizers, and the optimizer state and its checkpoint
/// format are TorchSharp's), with every Scalar created by <c>using</c> and held until the calls that use it have returned.
/// The classes keep TorchSharp's names (<c>AdamW</c>, <c>SGD</c>): <c>save_state_dict</c> writes the optimizer's type name and
/// <c>load_state_dict</c> refuses another, so checkpoints written before and after this class existed load into either.
/// </remarks>
public static class ScalarSafe
{
    /// <summary>TorchSharp's AdamW update (AMSGrad and maximize included), its Scalars held.</summary>
    public sealed class AdamW(IEnumerable<TorchSharp.Modules.AdamW.ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay)
        : TorchSharp.Modules.AdamW(groups, lr, beta1, beta2, eps, weightDecay, amsgrad: false, maximize: false)
    {
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var o = group.Options;
            double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, lr = o.LearningRate!.Value, weightDecay = o.weight_decay!.Value;
            using var one = 1.ToScalar();                                                      // the alpha TorchSharp's add_(ε) adds
            using var decay = (1 - lr * weightDecay).ToScalar();
            using var beta1Scalar = beta1.ToScalar();
            using var beta2Scalar = beta2.ToScalar();
            using var oneMinusBeta1 = (1 - beta1).ToScalar();
            using var oneMinusBeta2 = (1 - beta2).ToScalar();
            using var epsScalar = o.eps!.Value.ToScalar();
            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;
                if (o.maximize!.Value) grad = grad.neg();
                state.step += 1;
                param.mul_(decay);
                double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
                state.exp_avg.mul_(beta1Scalar).add_(grad, oneMinusBeta1);
                state.exp_avg_sq.mul_(beta2Scalar).addcmul_(grad, grad, oneMinusBeta2);
                if (o.amsgrad!.Value)
                {
                    var previous = state.max_exp_avg_sq;
                    state.max_exp_avg_sq = torch.maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                    previous.Dispose();
                }
                using var correction2Root = Math.Sqrt(biasCorrection2).ToScalar();
                var denominator = (o.amsgrad.Value ? state.max_exp_avg_sq : state.exp_avg_sq).sqrt().div(correction2Root).add_(epsScalar, one);
                using var stepSize = (-(lr / biasCorrection1)).ToScalar();
                param.addcdiv_(state.exp_avg, denominator, stepSize);
            }
        }, closure);
    }

    /// <summary>TorchSharp's SGD update (momentum, dampening, Nesterov, weight decay, maximize), its Scalars held.</summary>
    public sealed class SGD(IEnumerable<TorchSharp.Modules.SGD.ParamGroup> groups, double lr, double momentum, double dampening, double weightDecay)
        : TorchSharp.Modules.SGD(groups, lr, momentum, dampening, weightDecay, nesterov: false, maximize: false)
    {
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var o = group.Options;
            double momentum = o.momentum!.Value, weightDecay = o.weight_decay!.Value, lr = o.LearningRate!.Value;
            using var weightDecayScalar = weightDecay.ToScalar();
            using var momentumScalar = momentum.ToScalar();
            using var oneMinusDampening = (1 - o.dampening!.Value).ToScalar();
            using var alpha = (o.maximize!.Value ? lr : -lr).ToScalar();
            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;
                if (weightDecay != 0) grad = grad.add(param, weightDecayScalar);
                if (momentum != 0)
                {
                    var buffer = state.momentum_buffer;
                    if (buffer is null) state.momentum_buffer = buffer = grad.clone().detach().DetachFromDisposeScope();
                    else buffer.mul_(momentumScalar).add_(grad, oneMinusDampening);
                    grad = o.nesterov!.Value ? grad.add(buffer, momentumScalar) : buffer;
                }
                param.add_(grad, alpha);
            }
        }, closure);
    }
}
