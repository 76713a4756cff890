using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.Fsr;

/// <summary>
/// Cross-attention from one class token to the patch tokens (models/vit.py CrossAttention; Eqs. 6–7): q = W_q c [B, H, 1, d],
/// K = W_k F, V = W_v F [B, H, N, d] with separate linears, a = softmax(q Kᵀ / √d (+ −∞ on masked tokens)), out = proj(a V).
/// Keys q, k, v, proj.
/// </summary>
public sealed class CrossAttention : Module<Tensor, Tensor, Tensor?, Tensor>
{
    readonly Linear q;
    readonly Linear k;
    readonly Linear v;
    readonly Linear proj;
    readonly int _heads;
    readonly double _scale;

    public CrossAttention(int dim, int numHeads, bool qkvBias) : base(nameof(CrossAttention))
    {
        if (dim % numHeads != 0) throw new WeakSegException($"aggregator width {dim} is not divisible by its {numHeads} heads");
        _heads = numHeads;
        _scale = Math.Pow(dim / numHeads, -0.5);
        q = Linear(dim, dim, hasBias: qkvBias);
        k = Linear(dim, dim, hasBias: qkvBias);
        v = Linear(dim, dim, hasBias: qkvBias);
        proj = Linear(dim, dim);
        RegisterComponents();
    }

    /// <summary>classToken [B, 1, D] (normed), tokens [B, N, D] (normed), masked [B, N] bool or null → [B, 1, D].</summary>
    public override Tensor forward(Tensor classToken, Tensor tokens, Tensor? masked)
    {
        using var scope = torch.NewDisposeScope();
        long b = tokens.shape[0], n = tokens.shape[1], d = tokens.shape[2], hd = d / _heads;
        var query = q.call(classToken).reshape(b, 1, _heads, hd).permute(0, 2, 1, 3);          // [B, H, 1, d]
        var key = k.call(tokens).reshape(b, n, _heads, hd).permute(0, 2, 1, 3);                 // [B, H, N, d]
        var value = v.call(tokens).reshape(b, n, _heads, hd).permute(0, 2, 1, 3);
        using var scale = _scale.ToScalar();
        var logits = torch.matmul(query, key.transpose(-2, -1)).mul(scale);                     // [B, H, 1, N]
        if (masked is not null)
        {
            using var minusInfinity = double.NegativeInfinity.ToScalar();
            logits = logits.masked_fill(masked.reshape(b, 1, 1, n), minusInfinity);
        }
        var mixed = torch.matmul(logits.softmax(-1), value).transpose(1, 2).reshape(b, 1, d);   // [B, 1, D]
        return proj.call(mixed).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One aggregator block (models/vit.py CABlock; Eq. 5): ĉ = c + γ₁·CA(LN₁([c; F])), c' = ĉ + γ₂·MLP(LN₂(ĉ)), with the class token and
/// the patch tokens normed by the same LN₁. γ (keys gamma1, gamma2) exists only with a layer scale (the first release); the released
/// block has none. Keys norm1, attn.{q,k,v,proj}, norm2, mlp.{fc1,fc2}.
/// </summary>
public sealed class CrossAttentionBlock : Module<Tensor, Tensor, Tensor?, Tensor>
{
    readonly LayerNorm norm1;
    readonly CrossAttention attn;
    readonly LayerNorm norm2;
    readonly Mlp mlp;
    readonly Parameter? gamma1;
    readonly Parameter? gamma2;

    public CrossAttentionBlock(int dim, int numHeads, double mlpRatio, bool qkvBias, double eps, double? layerScale = null) : base(nameof(CrossAttentionBlock))
    {
        norm1 = LayerNorm(dim, eps: eps);
        attn = new CrossAttention(dim, numHeads, qkvBias);
        norm2 = LayerNorm(dim, eps: eps);
        mlp = new Mlp(dim, (int)(dim * mlpRatio), 0.0);
        if (layerScale is { } gamma)
        {
            gamma1 = new Parameter(torch.full(dim, gamma));
            gamma2 = new Parameter(torch.full(dim, gamma));
        }
        RegisterComponents();
    }

    /// <summary>classToken [B, 1, D], tokens [B, N, D], masked [B, N] bool (attention mask) or null → class token [B, 1, D].</summary>
    public override Tensor forward(Tensor classToken, Tensor tokens, Tensor? masked)
    {
        using var scope = torch.NewDisposeScope();
        var normed = norm1.call(torch.cat(new[] { classToken, tokens }, 1));
        long n = tokens.shape[1];
        var attended = attn.call(normed.narrow(1, 0, 1), normed.narrow(1, 1, n), masked);
        if (gamma1 is not null) attended = attended.mul(gamma1);
        var c = StableScalars.Add(classToken, attended);
        var fed = mlp.call(norm2.call(c));
        if (gamma2 is not null) fed = fed.mul(gamma2);
        return StableScalars.Add(c, fed).MoveToOuterDisposeScope();
    }
}
