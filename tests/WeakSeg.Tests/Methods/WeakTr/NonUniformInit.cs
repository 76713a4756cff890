using TorchSharp;
using WeakSeg.Models.Vit;

namespace WeakSeg.Tests.Methods.WeakTr;

/// <summary>
/// Test-only re-initialisation. On TorchSharp 0.107.0, <c>init.trunc_normal_(t, std: 0.02)</c> fills t with the constant 0.02,
/// so a freshly built <see cref="VisionTransformer"/> has identical rows in every Linear weight: q = k = 0 and every attention
/// map is exactly uniform. Map tests need non-uniform, asymmetric attention to be able to fail, so they redraw the backbone's
/// tokens and Linear weights from N(0, std²) here.
/// </summary>
internal static class NonUniformInit
{
    public static void Apply(VisionTransformer model, double std = 0.3)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            bool backboneWeight = name.StartsWith("blocks.", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal)
                                  && parameter.dim() == 2;
            if (backboneWeight || name is "cls_token" or "pos_embed") parameter.normal_(0, std);
        }
    }
}
