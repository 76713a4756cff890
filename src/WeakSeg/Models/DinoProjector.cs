using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Models;

/// <summary>
/// A weight-normalised linear layer without bias (torch.nn.utils.weight_norm, dim 0): W = g · v / ‖v‖ per output row. Keys
/// weight_g [out, 1] and weight_v [out, in]. <paramref name="trainScale"/> false freezes g (DINO fixes it to 1).
/// </summary>
public sealed class WeightNormLinear : Module<Tensor, Tensor>
{
    readonly Parameter weight_g;
    readonly Parameter weight_v;

    public WeightNormLinear(int inFeatures, int outFeatures, bool trainScale = false) : base(nameof(WeightNormLinear))
    {
        double bound = 1.0 / Math.Sqrt(inFeatures);                                   // nn.Linear's default weight init
        weight_v = new Parameter(torch.empty(outFeatures, inFeatures).uniform_(-bound, bound));
        weight_g = new Parameter(torch.ones(outFeatures, 1), requires_grad: trainScale);
        RegisterComponents();
    }

    /// <summary>The effective weight [out, in].</summary>
    public Tensor Weight()
    {
        using var scope = torch.NewDisposeScope();
        var norm = torch.linalg.vector_norm(weight_v, dims: new long[] { 1 }, keepdim: true);
        return weight_v.mul(weight_g.div(norm)).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x)
    {
        using var weight = Weight();
        return functional.linear(x, weight);
    }
}

/// <summary>
/// The DINO projector, 3 layers (FSR models/projector.py DINOHead; ToCo model/model_seg_neg.py CTCHead, the same module): mlp = Linear(D, hidden), GELU, Linear(hidden, hidden), GELU,
/// Linear(hidden, bottleneck) (truncated normal 0.02, zero biases), L2 normalisation (eps 1e-12), then the weight-normalised
/// <c>last_layer</c> (bottleneck → K, no bias, g fixed to 1). Keys mlp.0/2/4.*, last_layer.weight_g, last_layer.weight_v.
/// Applied to every token: [..., D] → [..., K].
/// </summary>
public sealed class DinoProjector : Module<Tensor, Tensor>
{
    readonly Sequential mlp;
    readonly WeightNormLinear last_layer;

    public DinoProjector(int inDim, int outDim, int hiddenDim = 2048, int bottleneckDim = 256) : base(nameof(DinoProjector))
    {
        mlp = Sequential(Linear(inDim, hiddenDim), GELU(), Linear(hiddenDim, hiddenDim), GELU(), Linear(hiddenDim, bottleneckDim));
        last_layer = new WeightNormLinear(bottleneckDim, outDim);
        RegisterComponents();
        using var noGrad = torch.no_grad();
        foreach (var module in mlp.modules())
        {
            if (module is Linear linear)
            {
                WeightInit.TruncNormal_(linear.weight, std: 0.02);
                if (linear.bias is not null) init.zeros_(linear.bias);
            }
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = mlp.call(x);
        using var normed = functional.normalize(hidden, p: 2, dim: -1, eps: 1e-12);
        return last_layer.call(normed);
    }
}
