using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>
/// Truncated-normal initialisation done by hand: TorchSharp-cpu 0.107's <c>nn.init.trunc_normal_</c> fills tensors with
/// (near-)zeros (measured std ≈ 1e-9 for std 0.02), which leaves timm-initialised ViT layers dead. Values ~ N(mean, std²)
/// redrawn until inside [a, b] (timm/PyTorch semantics: a, b absolute bounds).
/// </summary>
public static class TruncatedNormal
{
    public static void Fill(Tensor tensor, double std, double mean = 0, double a = -2, double b = 2)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        tensor.normal_(mean, std);
        for (int round = 0; round < 100; round++)
        {
            var outside = tensor.lt(a).logical_or(tensor.gt(b));
            if (!outside.any().item<bool>()) return;
            var fresh = torch.empty_like(tensor).normal_(mean, std);
            tensor.copy_(torch.where(outside, fresh, tensor));
        }
        tensor.clamp_(a, b);
    }

    /// <summary>timm ViT init for every Linear weight under <paramref name="module"/> (std 0.02, bias 0) and the given token tensors.</summary>
    public static void InitializeTimmStyle(nn.Module module, params Tensor[] tokens)
    {
        using var _ = torch.no_grad();
        foreach (var m in module.modules())
            if (m is Linear linear)
            {
                Fill(linear.weight!, 0.02);
                linear.bias?.zero_();
            }
        foreach (var t in tokens) Fill(t, 0.02);
    }
}
