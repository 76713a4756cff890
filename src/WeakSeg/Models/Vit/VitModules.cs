using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Models.Vit;

/// <summary>Image to patch tokens: Conv2d(in, D, p, stride p) then flatten. [B, 3, H, W] → [B, (H/p)(W/p), D].</summary>
public sealed class PatchEmbed : Module<Tensor, Tensor>
{
    readonly Conv2d proj;

    public PatchEmbed(int patchSize, int inChannels, int embedDim) : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        proj = Conv2d(inChannels, embedDim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    public int PatchSize { get; }

    public override Tensor forward(Tensor images)
    {
        using var x = proj.call(images);          // [B, D, h, w]
        return x.flatten(2).transpose(1, 2);      // [B, h·w, D]
    }
}

/// <summary>Multi-head self-attention with a fused qkv projection and an explicit softmax, returning the attention map.</summary>
public sealed class Attention : Module<Tensor, (Tensor Output, Tensor Weights)>
{
    readonly Linear qkv;
    readonly Dropout attn_drop;
    readonly Linear proj;
    readonly Dropout proj_drop;
    readonly int _numHeads;
    readonly double _scale;

    public Attention(int dim, int numHeads, bool qkvBias, double attnDrop, double projDrop) : base(nameof(Attention))
    {
        _numHeads = numHeads;
        _scale = Math.Pow(dim / numHeads, -0.5);
        qkv = Linear(dim, dim * 3, hasBias: qkvBias);
        attn_drop = Dropout(attnDrop);
        proj = Linear(dim, dim);
        proj_drop = Dropout(projDrop);
        RegisterComponents();
    }

    /// <summary>x [B, T, D] → (output [B, T, D], post-softmax attention [B, H, T, T] before attention dropout).</summary>
    public override (Tensor Output, Tensor Weights) forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1], d = x.shape[2];
        var qkvHeads = qkv.call(x).reshape(b, t, 3, _numHeads, d / _numHeads).permute(2, 0, 3, 1, 4); // [3, B, H, T, d/H]
        var q = qkvHeads[0];
        var k = qkvHeads[1];
        var v = qkvHeads[2];
        using var scale = _scale.ToScalar();                                                            // held until the end: see StableScalars
        var weights = torch.matmul(q, k.transpose(-2, -1)).mul(scale).softmax(-1);                    // [B, H, T, T]
        var mixed = torch.matmul(attn_drop.call(weights), v).transpose(1, 2).reshape(b, t, d);        // [B, T, D]
        return (proj_drop.call(proj.call(mixed)), weights);
    }
}

/// <summary>Transformer MLP: fc1, exact (erf) GELU, dropout, fc2, dropout.</summary>
public sealed class Mlp : Module<Tensor, Tensor>
{
    readonly Linear fc1;
    readonly GELU act;
    readonly Dropout drop1;
    readonly Linear fc2;
    readonly Dropout drop2;

    public Mlp(int inFeatures, int hiddenFeatures, double drop) : base(nameof(Mlp))
    {
        fc1 = Linear(inFeatures, hiddenFeatures);
        act = GELU();
        drop1 = Dropout(drop);
        fc2 = Linear(hiddenFeatures, inFeatures);
        drop2 = Dropout(drop);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => drop2.call(fc2.call(drop1.call(act.call(fc1.call(x)))));
}

/// <summary>Stochastic depth (per-sample residual-branch drop) as in timm: identity in eval mode or when the rate is 0.</summary>
public sealed class DropPath : Module<Tensor, Tensor>
{
    readonly double _rate;

    public DropPath(double rate) : base(nameof(DropPath))
    {
        _rate = rate;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!training || _rate == 0) return x.alias();
        double keep = 1 - _rate;
        var shape = new long[x.dim()];
        shape[0] = x.shape[0];
        for (int i = 1; i < shape.Length; i++) shape[i] = 1;
        using var mask = torch.empty(shape, x.dtype, x.device).bernoulli_(keep);
        using var keepScalar = keep.ToScalar();                                                         // held until the end: see StableScalars
        if (keep > 0) mask.div_(keepScalar);
        return x.mul(mask);
    }
}

/// <summary>What a <see cref="Block"/> returns.</summary>
/// <param name="Output">x' [B, T, D], the block's output tokens.</param>
/// <param name="Weights">Post-softmax attention [B, H, T, T] (before attention dropout).</param>
/// <param name="AttentionOutput">o = proj(softmax(qkᵀ)v) [B, T, D]: the attention branch's output after the output projection, before
/// drop-path and the residual add (WeakTr's adaptive attention fusion pools it).</param>
public readonly record struct BlockOutput(Tensor Output, Tensor Weights, Tensor AttentionOutput);

/// <summary>Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))). Returns the attention map and the
/// attention branch's output too.</summary>
public sealed class Block : Module<Tensor, BlockOutput>
{
    readonly LayerNorm norm1;
    readonly Attention attn;
    readonly DropPath drop_path;
    readonly LayerNorm norm2;
    readonly Mlp mlp;

    public Block(int dim, int numHeads, double mlpRatio, bool qkvBias, double eps, double drop, double attnDrop, double dropPath) : base(nameof(Block))
    {
        norm1 = LayerNorm(dim, eps: eps);
        attn = new Attention(dim, numHeads, qkvBias, attnDrop, drop);
        drop_path = new DropPath(dropPath);
        norm2 = LayerNorm(dim, eps: eps);
        mlp = new Mlp(dim, (int)(dim * mlpRatio), drop);
        RegisterComponents();
    }

    /// <summary>x [B, T, D] → (x' [B, T, D], attention [B, H, T, T], attention-branch output o [B, T, D]).</summary>
    public override BlockOutput forward(Tensor x)
    {
        var (attended, weights) = attn.call(norm1.call(x));
        var y = StableScalars.Add(x, drop_path.call(attended));                      // not `+`: see StableScalars
        var output = StableScalars.Add(y, drop_path.call(mlp.call(norm2.call(y))));
        return new BlockOutput(output, weights, attended);
    }
}
