"""PyTorch versions of the two models timed by `weakseg bench train --model cpu` and `weakseg bench seg --model cpu`.

Written for the side-by-side benchmark (bench/side_by_side.sh): same shapes, same layer order, same explicit-softmax
attention, same losses and the same per-step work as WeakSeg's shared trainer, so images/s compare like for like.
Weights are randomly initialised (throughput does not depend on their values).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    """Conv2d(in, D, p, stride p), flattened to tokens [B, N, D]."""

    def __init__(self, patch, in_ch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Fused qkv, explicit softmax (the attention map is an output, as in WeakSeg)."""

    def __init__(self, dim, heads, drop=0.0):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = (q @ k.transpose(-2, -1)).mul(self.scale).softmax(-1)
        mixed = (self.attn_drop(weights) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj_drop(self.proj(mixed)), weights


class DropPath(nn.Module):
    """Per-sample residual drop (stochastic depth), identity at rate 0 or in eval mode."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        keep = 1 - self.rate
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype).bernoulli_(keep)
        return x * mask.div_(keep)


class Block(nn.Module):
    """Pre-norm block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))); MLP = fc1, exact GELU, fc2."""

    def __init__(self, dim, heads, eps, drop=0.0, drop_path=0.0, mlp_ratio=4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim), nn.Dropout(drop))

    def forward(self, x):
        attended, weights = self.attn(self.norm1(x))
        y = x + self.drop_path(attended)
        return y + self.drop_path(self.mlp(self.norm2(y))), weights


class VisionTransformer(nn.Module):
    """timm/DeiT layout with C class tokens; one position embedding added after concatenation."""

    def __init__(self, image, patch, dim, depth, heads, class_tokens=1, drop_path=0.1, eps=1e-6):
        super().__init__()
        n = (image // patch) ** 2
        self.grid = image // patch
        self.class_tokens = class_tokens
        self.patch_embed = PatchEmbed(patch, 3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, class_tokens, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, class_tokens + n, dim))
        self.pos_drop = nn.Dropout(0.0)
        rates = [drop_path * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.blocks = nn.ModuleList([Block(dim, heads, eps, drop_path=r) for r in rates])
        self.norm = nn.LayerNorm(dim, eps=eps)
        for p in (self.pos_embed, self.cls_token):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, images, final_norm):
        patches = self.patch_embed(images)
        tokens = torch.cat([self.cls_token.expand(images.shape[0], -1, -1), patches], 1)
        x = self.pos_drop(tokens + self.pos_embed)
        for block in self.blocks:
            x, _ = block(x)
        if final_norm:
            x = self.norm(x)
        c = self.class_tokens
        return x[:, :c], x[:, c:]


class MctFormerV2(nn.Module):
    """MCTformer-V2: one class token per class, no final norm; class logits = mean over D of each class token;
    PatchCAM head Conv2d(D, K, 3, padding 1) on the patch grid, logits by global average pooling."""

    def __init__(self, classes=10, image=96, patch=8, dim=192, depth=6, heads=4):
        super().__init__()
        self.backbone = VisionTransformer(image, patch, dim, depth, heads, class_tokens=classes)
        self.head = nn.Conv2d(dim, classes, 3, padding=1)

    def forward(self, images):
        class_tokens, patch_tokens = self.backbone(images, final_norm=False)
        b, n, d = patch_tokens.shape
        g = self.backbone.grid
        cam = self.head(patch_tokens.transpose(1, 2).reshape(b, d, g, g))
        return class_tokens.mean(-1), cam.mean((2, 3))

    @staticmethod
    def loss(outputs, labels):
        class_logits, patch_logits = outputs
        return F.multilabel_soft_margin_loss(class_logits, labels) + F.multilabel_soft_margin_loss(patch_logits, labels)


class MaskTransformerDecoder(nn.Module):
    """Segmenter mask transformer with one learned query per class (K + 1), cosine masks / sqrt(D), LayerNorm over classes."""

    def __init__(self, enc_dim, dim, heads, layers, classes, eps=1e-5):
        super().__init__()
        self.classes = classes
        self.inv_sqrt_dim = 1.0 / math.sqrt(dim)
        self.proj_dec = nn.Linear(enc_dim, dim)
        self.cls_emb = nn.Parameter(torch.zeros(1, classes, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, eps) for _ in range(layers)])
        self.decoder_norm = nn.LayerNorm(dim, eps=eps)
        self.proj_patch = nn.Parameter(torch.randn(dim, dim) * self.inv_sqrt_dim)
        self.proj_classes = nn.Parameter(torch.randn(dim, dim) * self.inv_sqrt_dim)
        self.mask_norm = nn.LayerNorm(classes, eps=eps)
        nn.init.trunc_normal_(self.cls_emb, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, tokens, grid):
        b, n, _ = tokens.shape
        x = torch.cat([self.proj_dec(tokens), self.cls_emb.expand(b, -1, -1)], 1)
        for block in self.blocks:
            x, _ = block(x)
        x = self.decoder_norm(x)
        patches = F.normalize(x[:, :n] @ self.proj_patch, p=2, dim=-1)
        queries = F.normalize(x[:, n:] @ self.proj_classes, p=2, dim=-1)
        masks = self.mask_norm((patches @ queries.transpose(1, 2)).mul(self.inv_sqrt_dim))
        return masks.transpose(1, 2).reshape(b, self.classes, grid, grid)


class Segmenter(nn.Module):
    """ViT encoder (one class token, final norm) + mask-transformer decoder, logits upsampled bilinearly to the crop."""

    def __init__(self, classes=10, crop=96, patch=8, dim=192, depth=4, heads=3, decoder_layers=1):
        super().__init__()
        self.encoder = VisionTransformer(crop, patch, dim, depth, heads, class_tokens=1, drop_path=0.0)
        self.decoder = MaskTransformerDecoder(dim, dim, max(1, dim // 64), decoder_layers, classes + 1)

    def forward(self, images):
        _, patch_tokens = self.encoder(images, final_norm=True)
        grid = self.decoder(patch_tokens, self.encoder.grid)
        return F.interpolate(grid, size=images.shape[2:], mode="bilinear", align_corners=False)


def clipping_loss(logits, target, patch=24, start_value=0.3, ignore=255):
    """WeakTr's gradient-clipping decoder loss with G = per-pixel CE (the WeakSeg default signal)."""
    ce = F.cross_entropy(logits, target, ignore_index=ignore, reduction="none")
    valid = target.ne(ignore)
    valid_count = valid.sum().float()
    plain = ce.sum() / valid_count.clamp_min(1)
    with torch.no_grad():
        b, h, w = ce.shape
        lh, lw = -(-h // patch), -(-w // patch)
        v = valid.float()
        pad = (0, lw * patch - w, 0, lh * patch - h)
        g = F.pad(ce.detach() * v, pad).reshape(b, lh, patch, lw, patch)
        counts = F.pad(v, pad).reshape(b, lh, patch, lw, patch).sum((2, 4))
        sums = g.sum((2, 4))
        has = counts.gt(0)
        means = torch.where(has, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))
        populated = int(has.sum().item())
        glob = float("nan") if populated == 0 else torch.where(has, means, torch.zeros_like(means)).sum().item() / populated
        if populated > 0 and glob <= start_value:
            thr = torch.where(has, means.clamp_min(glob), torch.zeros_like(means))
            per_pixel = thr.reshape(b, lh, 1, lw, 1).expand(b, lh, patch, lw, patch).reshape(b, lh * patch, lw * patch)[:, :h, :w]
            keep = valid & ce.detach().le(per_pixel)
        else:
            keep = valid.clone()
    keep = keep.float()
    kept = keep.sum()
    total = (ce * keep).sum() / kept.clamp_min(1)
    return total, [plain.detach(), torch.tensor(0.0 if math.isnan(glob) else glob), (kept / valid_count.clamp_min(1)).detach()]
