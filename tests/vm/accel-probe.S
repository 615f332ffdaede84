	.code32
	.set BASE, 0x100000
	.globl _start
_start:
hdr:
	.long 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
	.long BASE, BASE, 0, 0, BASE + (entry - hdr)
entry:
	/* page tables at 0x200000..: PML4, PDPT, PD (identity map 1 GiB, 2 MiB pages) */
	mov $0x200000, %edi
	xor %eax, %eax
	mov $(3 * 4096 / 4), %ecx
	rep stosl
	movl $0x201003, 0x200000
	movl $0x202003, 0x201000
	movl $0x201003, 0x200ff8	/* PML4[511]: the higher half, where Linux runs */
	movl $0x202003, 0x201ff0	/* PDPT[510]: 0xffffffff80000000 -> 0 */
	mov $0x202000, %edi
	mov $0x83, %eax
	mov $512, %ecx
1:	mov %eax, (%edi)
	movl $0, 4(%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	mov $0x210000, %edi
	xor %eax, %eax
	mov $(0x21 * 16 / 4), %ecx
	rep stosl
	mov $(BASE + (irq0 - hdr)), %eax
	mov %ax, 0x210200		/* offset 15:0 */
	movw $0x08, 0x210202		/* selector */
	movw $0x8E00, 0x210204		/* present, interrupt gate */
	shr $16, %eax
	mov %ax, 0x210206		/* offset 31:16 */
	mov $0x200000, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax		/* PAE */
	mov %eax, %cr4
	mov $0xC0000080, %ecx	/* EFER */
	rdmsr
	or $0x100, %eax		/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax	/* PG | PE */
	mov %eax, %cr0
	lgdt BASE + (gdtr - hdr)
	ljmp $0x08, $(BASE + (long64 - hdr))
	.code64
long64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %ss
	mov $0x400000, %esp
	/* continue in the higher half, as a Linux kernel does */
	movabs $(0xffffffff80000000 + BASE + (high - hdr)), %rax
	jmp *%rax
high:
	/* touch memory through paging: write and read back above 1 MiB */
	movabs $0x12345678deadbeef, %rax
	mov %rax, 0x300000
	mov 0x300000, %rbx
	cmp %rax, %rbx
	jne 2f
	/* a timer interrupt must arrive: real guests need them, a bare hlt does not */
	lidt BASE + (idtr - hdr)
	mov $0x11, %al
	out %al, $0x20
	mov $0x20, %al
	out %al, $0x21
	mov $0x04, %al
	out %al, $0x21
	mov $0x01, %al
	out %al, $0x21
	mov $0xfe, %al		/* only IRQ0 */
	out %al, $0x21
	mov $0x34, %al		/* PIT channel 0, rate generator */
	out %al, $0x43
	mov $0x00, %al
	out %al, $0x40
	mov $0x10, %al
	out %al, $0x40
	sti
2:	hlt
	jmp 2b
irq0:
	mov $0xf4, %dx
	mov $0x2a, %al
	out %al, %dx
	jmp irq0
	.align 8
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF	/* 64-bit code */
	.quad 0x00CF92000000FFFF	/* data */
idtr:
	.word 0x21 * 16 - 1
	.quad 0x210000
gdtr:
	.word gdtr - gdt - 1
	.long BASE + (gdt - hdr)
