using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models;

/// <summary>
/// Weight initialisers. TorchSharp 0.107's <c>nn.init.trunc_normal_</c> fills the tensor with the constant <c>std</c>
/// (measured: std 0, every value 0.02), which makes every ViT attention map uniform at initialisation; this is the
/// timm/PyTorch truncated normal written on <c>normal_</c> instead.
/// </summary>
public static class WeightInit
{
    /// <summary>
    /// In place: values from N(mean, std²), every value outside [a, b] redrawn until none is (PyTorch's definition of the
    /// truncated normal; timm's defaults a = −2, b = 2 are absolute bounds). Uses the torch generator, so it follows the seed.
    /// </summary>
    public static Tensor TruncNormal_(Tensor tensor, double std, double mean = 0.0, double a = -2.0, double b = 2.0)
    {
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), $"std must be positive (got {std})");
        if (!(a < b) || mean < a || mean > b) throw new ArgumentOutOfRangeException(nameof(a), $"bounds [{a}, {b}] must contain the mean {mean}");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        tensor.normal_(mean, std);
        for (int round = 0; round < 1000; round++)
        {
            var outside = tensor.lt(a).logical_or_(tensor.gt(b));
            if (!outside.any().item<bool>()) return tensor;
            var redraw = torch.empty_like(tensor).normal_(mean, std);
            tensor.copy_(torch.where(outside, redraw, tensor));
        }
        tensor.clamp_(a, b); // unreachable in practice: P(outside) ≤ 5 % per round for bounds ≥ 2 std
        return tensor;
    }

    /// <summary>A linear classifier head with timm's init: weight ~ truncated N(0, 0.02²), bias 0.</summary>
    public static TorchSharp.Modules.Linear ClassifierHead(long inFeatures, long classes)
    {
        var head = nn.Linear(inFeatures, classes);
        using (torch.no_grad())
        {
            TruncNormal_(head.weight, std: 0.02);
            nn.init.zeros_(head.bias!);
        }
        return head;
    }
}
